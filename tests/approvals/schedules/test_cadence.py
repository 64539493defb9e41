"""Cadences are fixed UTC instants: every replica computes the same next occurrence."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from approvals.commands.cadence import Cadence, parse_cadence

THU_NOON = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # a Thursday


@pytest.mark.parametrize(
    ("words", "after", "expected"),
    [
        ("fri 06:00", THU_NOON, datetime(2026, 11, 27, 6, 0, tzinfo=UTC)),
        ("thu 06:00", THU_NOON, datetime(2026, 12, 3, 6, 0, tzinfo=UTC)),
        ("thu 12:00", THU_NOON, datetime(2026, 12, 3, 12, 0, tzinfo=UTC)),
        ("thu 12:01", THU_NOON, datetime(2026, 11, 26, 12, 1, tzinfo=UTC)),
        ("day 06:00", THU_NOON, datetime(2026, 11, 27, 6, 0, tzinfo=UTC)),
        ("mon,thu 22:30", THU_NOON, datetime(2026, 11, 26, 22, 30, tzinfo=UTC)),
        ("weekdays 07:00", datetime(2026, 11, 27, 8, 0, tzinfo=UTC), datetime(2026, 11, 30, 7, 0, tzinfo=UTC)),
        ("6h", THU_NOON, datetime(2026, 11, 26, 18, 0, tzinfo=UTC)),
        ("6h", datetime(2026, 11, 26, 11, 59, tzinfo=UTC), THU_NOON),
    ],
)
def test_next_occurrence_is_strictly_after_the_moment(words: str, after: datetime, expected: datetime) -> None:
    assert parse_cadence(words.split()).next_after(after) == expected


@pytest.mark.parametrize("spec", ["fri 06:00", "day 06:00", "mon,thu 22:30", "6h", "sun 00:00"])
def test_the_stored_spec_parses_back_to_the_same_cadence(spec: str) -> None:
    cadence = parse_cadence(spec.split())
    assert cadence.spec() == f"every {spec}"
    assert parse_cadence(cadence.spec().split()[1:]) == cadence


def test_describe_says_utc_for_times_of_day() -> None:
    assert Cadence(days=(4,), hour=6).describe() == "every fri 06:00 UTC"
    assert Cadence(interval_hours=6).describe() == "every 6h"
