"""``isolated`` and ``adopt`` parse into typed commands; mistakes get one sentence naming the fix."""

from __future__ import annotations

from datetime import timedelta

import pytest

from approvals.commands import Target, TargetKind
from approvals.commands.grammar import parse
from approvals.commands.help import help_text
from approvals.commands.models import AdoptCommand, IsolatedCommand
from tests.support.grammar import parse_error


def test_isolated_alone_lists_everything() -> None:
    assert parse("isolated") == IsolatedCommand()


def test_isolated_takes_targets_and_an_age() -> None:
    command = parse('/mde isolated tag:"Finance Laptops" incident:1042 --older-than 3d')
    assert command == IsolatedCommand(
        targets=(Target(TargetKind.TAG, "Finance Laptops"), Target(TargetKind.INCIDENT, "1042")),
        older_than=timedelta(days=3),
    )
    assert parse("isolated --older-than=12h") == IsolatedCommand(older_than=timedelta(hours=12))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("isolated --older-than 3x", "--older-than takes a span such as 30m, 12h, 3d or 2w, not '3x'."),
        ("isolated --older-than 0d", "--older-than takes a span such as 30m, 12h, 3d or 2w, not '0d'."),
        ("isolated ip:10.1.2.3", "isolated narrows by device:, tag:, group: or incident:, not ip:."),
        ("adopt device:ws-1", 'adopt needs --reason "…": the register keeps why the device stays isolated.'),
        ('adopt tag:x --reason "y"', 'adopt takes exactly one device:NAME, e.g. adopt device:ws-0042 --reason "…".'),
        ('adopt a b --reason "y"', 'adopt takes exactly one device:NAME, e.g. adopt device:ws-0042 --reason "…".'),
    ],
)
def test_mistakes_are_one_sentence(text: str, message: str) -> None:
    assert parse_error(text) == message


def test_adopt_takes_one_device_and_a_reason() -> None:
    assert parse('adopt ws-0042 --reason "IR-9"') == AdoptCommand(device="ws-0042", reason="IR-9")


def test_help_lists_both_and_explains_isolated() -> None:
    assert "isolated" in help_text(None) and "adopt" in help_text(None)
    assert "isolated [TARGETS] [--older-than SPAN]" in help_text("isolated", prefix="/mde")
