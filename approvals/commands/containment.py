"""``isolated`` and ``adopt``: reading and completing the containment register. Same error style as the
rest of the grammar."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from approvals.commands.models import AdoptCommand, Command, IsolatedCommand, ParseError, Target, TargetKind, Verb

SPAN = re.compile(r"^(\d{1,4})\s*([mhdw])$")
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
LISTABLE = {TargetKind.DEVICE, TargetKind.TAG, TargetKind.GROUP, TargetKind.INCIDENT}


def parse_span(text: str, option: str) -> timedelta:
    """``30m``, ``12h``, ``3d``, ``2w`` -> a positive duration."""
    match = SPAN.match(text.strip().lower())
    if match is None or int(match.group(1)) == 0:
        raise ParseError(f"--{option} takes a span such as 30m, 12h, 3d or 2w, not '{text}'.", token=text)
    return timedelta(**{UNITS[match.group(2)]: int(match.group(1))})


def build_containment(verb: Verb, targets: list[Target], options: dict[str, str | None]) -> Command:
    if verb is Verb.ADOPT:
        devices = [t for t in targets if t.kind is TargetKind.DEVICE]
        if len(devices) != 1 or len(targets) != 1:
            raise ParseError('adopt takes exactly one device:NAME, e.g. adopt device:ws-0042 --reason "…".')
        reason = (options.get("reason") or "").strip()
        if not reason:
            raise ParseError('adopt needs --reason "…": the register keeps why the device stays isolated.')
        return AdoptCommand(device=devices[0].value, reason=reason)
    for target in targets:
        if target.kind not in LISTABLE:
            raise ParseError(
                f"isolated narrows by device:, tag:, group: or incident:, not {target.kind.value}:.",
                token=str(target),
            )
    older = options.get("older-than")
    return IsolatedCommand(
        targets=tuple(dict.fromkeys(targets)),
        older_than=parse_span(older or "", "older-than") if "older-than" in options else None,
    )


def parse_until(text: str) -> datetime:
    """``2026-12-03T18:00Z`` (or with seconds, or ``+00:00``): an instant; a time without a zone is refused."""
    raw = text.strip()
    try:
        moment = datetime.fromisoformat(raw[:-1] + "+00:00" if raw[-1:] in ("Z", "z") else raw)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ParseError(f"--until takes a UTC time such as 2026-12-03T18:00Z, not '{text}'.", token=text)
    return moment.astimezone(UTC)


def time_box(options: dict[str, str | None]) -> tuple[timedelta | None, datetime | None]:
    """``--for SPAN`` or ``--until TIME`` (not both): when the release of a time-boxed isolation is proposed."""
    if "for" in options and "until" in options:
        raise ParseError("Use --for or --until, not both: --for 8h, or --until 2026-12-03T18:00Z.")
    after = parse_span(options["for"] or "", "for") if "for" in options else None
    at = parse_until(options["until"] or "") if "until" in options else None
    return after, at
