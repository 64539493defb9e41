"""Schedule cadences: ``every fri 06:00``, ``every day 06:00``, ``every mon,thu 22:30``, ``every 6h``.

Times are UTC. Occurrences are fixed instants (a weekly 06:00 is 06:00 UTC on that day; ``every 6h`` is
every multiple of 6 hours since 1970-01-01 00:00 UTC), so every replica computes the same due times and a
run's ``due_at`` identifies one occurrence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from approvals.commands.suggest import closest
from approvals.errors import ParseError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_WORDS: dict[str, tuple[int, ...]] = {d: (i,) for i, d in enumerate(DAYS)} | {
    "monday": (0,),
    "tuesday": (1,),
    "wednesday": (2,),
    "thursday": (3,),
    "friday": (4,),
    "saturday": (5,),
    "sunday": (6,),
    "day": tuple(range(7)),
    "daily": tuple(range(7)),
    "weekday": tuple(range(5)),
    "weekdays": tuple(range(5)),
}
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_HOURS = re.compile(r"^(\d{1,3})h$", re.IGNORECASE)
MAX_HOURS = 168
EXAMPLES = "every fri 06:00, every day 06:00, every mon,thu 22:30 or every 6h"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Cadence:
    """Either ``days`` (0 = Monday) at ``hour:minute`` UTC, or every ``interval_hours``."""

    days: tuple[int, ...] = ()
    hour: int = 0
    minute: int = 0
    interval_hours: int | None = None

    def spec(self) -> str:
        """The canonical text, parsed back by ``parse_cadence`` (stored in the schedule row)."""
        if self.interval_hours is not None:
            return f"every {self.interval_hours}h"
        days = "day" if len(self.days) == 7 else ",".join(DAYS[d] for d in self.days)
        return f"every {days} {self.hour:02d}:{self.minute:02d}"

    def describe(self) -> str:
        return self.spec() + ("" if self.interval_hours is not None else " UTC")

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after ``moment``."""
        moment = moment.astimezone(UTC)
        if self.interval_hours is not None:
            step = timedelta(hours=self.interval_hours)
            passed = (moment - EPOCH) // step
            return EPOCH + step * (passed + 1)
        day = moment.replace(hour=self.hour, minute=self.minute, second=0, microsecond=0)
        for offset in range(8):
            candidate = day + timedelta(days=offset)
            if candidate.weekday() in self.days and candidate > moment:
                return candidate
        raise AssertionError("a weekly cadence always has an occurrence within 8 days")


def parse_cadence(words: list[str]) -> Cadence:
    """Words after ``every``: ``fri 06:00`` | ``day 06:00`` | ``mon,thu 22:30`` | ``6h`` (a trailing UTC is fine)."""
    if words and words[-1].lower() in ("utc", "z", "gmt"):
        words = words[:-1]
    if not words:
        raise ParseError(f"every needs a cadence: {EXAMPLES}.")
    first = words[0].lower()
    hours = _HOURS.match(first)
    if hours:
        value = int(hours.group(1))
        if not 1 <= value <= MAX_HOURS:
            raise ParseError(f"every Nh takes 1 to {MAX_HOURS} hours, not {value}.", token=words[0])
        if len(words) > 1:
            raise ParseError(f"every {first} takes no time of day; remove '{words[1]}'.", token=words[1])
        return Cadence(interval_hours=value)
    days = _days(first)
    if len(words) < 2:
        raise ParseError(f"every {first} needs a time of day (UTC), e.g. every {first} 06:00.", token=words[0])
    match = _TIME.match(words[1])
    if not match:
        raise ParseError(
            f"'{words[1]}' is not a time; use HH:MM on the 24-hour clock, in UTC, e.g. 06:00 or 22:30.",
            token=words[1],
        )
    if len(words) > 2:
        hint = " Times are UTC; convert the local time to UTC." if words[2].isalpha() else ""
        raise ParseError(f"Unexpected '{words[2]}' after the time.{hint}", token=words[2])
    return Cadence(days=days, hour=int(match.group(1)), minute=int(match.group(2)))


def _days(text: str) -> tuple[int, ...]:
    found: set[int] = set()
    for part in text.split(","):
        word = part.strip().lower()
        if word not in _DAY_WORDS:
            hint = closest(word, list(_DAY_WORDS), cutoff=0.5)
            suggestion = f" Did you mean {hint}?" if hint else f" Use mon…sun, day, weekdays, or Nh ({EXAMPLES})."
            raise ParseError(f"'{part}' is not a day.{suggestion}", token=part, suggestion=hint)
        found.update(_DAY_WORDS[word])
    return tuple(sorted(found))
