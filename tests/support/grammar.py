"""The grammar's vocabulary for fuzzing: every verb, target prefix and option, and the characters that break
naive parsers (quotes, bidi controls, NUL), so random sequences of them look like commands; and the one
sentence a mistaken command gets."""

from __future__ import annotations

import pytest

from approvals.commands.grammar import parse
from approvals.commands.models import ParseError
from approvals.verbs import Verb


def parse_error(text: str) -> str:
    """The message of the ParseError ``text`` must raise."""
    with pytest.raises(ParseError) as caught:
        parse(text)
    return caught.value.message


WORDS = [v.value for v in Verb] + [
    "tag:",
    "device:",
    "group:",
    "ip:",
    "query:",
    "incident:",
    "--reason",
    "--type",
    "--canary",
    "--dry-run",
    "--scan",
    "--limit",
    "--sync",
    "schedule",
    "tag",
    "list",
    "run",
    "remove",
    "every",
    "fri",
    "mon,thu",
    "day",
    "06:00",
    "6h",
    "UTC",
    '"',
    "'",
    "“",
    "”",
    "\\",
    "#",
    "\u200f",
    "\u202e",
    "\x00",
    "ws-1",
    "10.0.0.1",
    "5",
    "full",
    ":",
    ",",
    "=",
]
