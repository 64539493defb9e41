"""One grammar for every surface: valid commands parse to exact objects; everything else is a ParseError."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from approvals.commands.cadence import Cadence
from approvals.commands.grammar import parse
from approvals.commands.help import help_text
from approvals.commands.models import (
    ActionCommand,
    CancelCommand,
    DecisionCommand,
    DevicesCommand,
    DoctorCommand,
    HelpCommand,
    HistoryCommand,
    ParseError,
    ScheduleCreateCommand,
    ScheduleListCommand,
    ScheduleRemoveCommand,
    ScheduleRunCommand,
    StatusCommand,
    Target,
    TargetKind,
    Verb,
)
from approvals.commands.spec import VERBS
from tests.support.grammar import WORDS, parse_error

T = TargetKind

VALID = [
    (
        'isolate tag:"Domain Controllers" --reason "INC 1"',
        ActionCommand(Verb.ISOLATE, (Target(T.TAG, "Domain Controllers"),), reason="INC 1"),
    ),
    (
        "isolate ws-1 device:ws-2,ws-3 --reason=ok --type selective --canary 2",
        ActionCommand(
            Verb.ISOLATE,
            (Target(T.DEVICE, "ws-1"), Target(T.DEVICE, "ws-2"), Target(T.DEVICE, "ws-3")),
            reason="ok",
            isolation_type="Selective",
            canary=2,
        ),
    ),
    (
        "/mde isolate TAG:x group:'Tier0 Servers' --reason r --type unmanaged --dry-run",
        ActionCommand(
            Verb.ISOLATE,
            (Target(T.TAG, "x"), Target(T.GROUP, "Tier0 Servers")),
            reason="r",
            isolation_type="UnManagedDevice",
            dry_run=True,
        ),
    ),
    (
        "isolate tag:“Finance Laptops” --reason “smart quotes”",
        ActionCommand(Verb.ISOLATE, (Target(T.TAG, "Finance Laptops"),), reason="smart quotes"),
    ),
    ("isolate tag:O'Brien's --reason r", ActionCommand(Verb.ISOLATE, (Target(T.TAG, "O'Brien's"),), reason="r")),
    (
        'isolate tag:"say \\"hi\\"" tag:x tag:x --reason r',
        ActionCommand(Verb.ISOLATE, (Target(T.TAG, 'say "hi"'), Target(T.TAG, "x")), reason="r"),
    ),
    (
        'tag "INC 1" query:"DeviceInfo | take 5" --reason r',
        ActionCommand(Verb.TAG, (Target(T.QUERY, "DeviceInfo | take 5"),), reason="r", tag_value="INC 1"),
    ),
    (
        "untag INC-1 tag:INC-1 --reason done",
        ActionCommand(Verb.UNTAG, (Target(T.TAG, "INC-1"),), reason="done", tag_value="INC-1"),
    ),
    (
        "scan group:Finance --scan full --reason sweep",
        ActionCommand(Verb.SCAN, (Target(T.GROUP, "Finance"),), reason="sweep", scan_type="Full"),
    ),
    (
        "unisolate incident:42,43 ip:10.0.0.1 --reason ok",
        ActionCommand(
            Verb.UNISOLATE, (Target(T.INCIDENT, "42"), Target(T.INCIDENT, "43"), Target(T.IP, "10.0.0.1")), reason="ok"
        ),
    ),
    ("release device:ws-1 --reason ok", ActionCommand(Verb.UNISOLATE, (Target(T.DEVICE, "ws-1"),), reason="ok")),
    ("devices ip:fe80::1", DevicesCommand((Target(T.IP, "fe80::1"),))),
    ("status", StatusCommand()),
    ("status #12", StatusCommand(12)),
    ("cancel R7 --reason oops", CancelCommand(7, "oops")),
    ("approve 12", DecisionCommand(True, 12)),
    ("reject 12 --reason 'wrong host'", DecisionCommand(False, 12, "wrong host")),
    ("history --limit 5 device:ws-1", HistoryCommand(5, "ws-1")),
    ("help isolate", HelpCommand("isolate")),
    ("", HelpCommand()),
    (
        'schedule tag "Domain Controllers" query:"DeviceNetworkEvents | where LocalPort == 88 | distinct DeviceId" '
        'every fri 06:00 --sync --reason "replaces the Logic App"',
        ScheduleCreateCommand(
            "Domain Controllers",
            "DeviceNetworkEvents | where LocalPort == 88 | distinct DeviceId",
            Cadence(days=(4,), hour=6, minute=0),
            "replaces the Logic App",
            sync=True,
        ),
    ),
    (
        "/mde schedule tag DC query:'DeviceInfo | project DeviceId' every day 6:00 UTC --reason r",
        ScheduleCreateCommand("DC", "DeviceInfo | project DeviceId", Cadence(days=tuple(range(7)), hour=6), "r"),
    ),
    (
        "schedule tag DC query:x every Mon,THU 22:30 --reason=r",
        ScheduleCreateCommand("DC", "x", Cadence(days=(0, 3), hour=22, minute=30), "r"),
    ),
    (
        "schedule tag DC query:x every mon, thursday 22:30 --reason r",
        ScheduleCreateCommand("DC", "x", Cadence(days=(0, 3), hour=22, minute=30), "r"),
    ),
    ("schedule tag DC query:x every 6h --reason r", ScheduleCreateCommand("DC", "x", Cadence(interval_hours=6), "r")),
    ("schedule list", ScheduleListCommand()),
    ("schedule ls", ScheduleListCommand()),
    ("schedule remove #3 --reason 'dynamic tag now'", ScheduleRemoveCommand(3, "dynamic tag now")),
    ("schedule run 3", ScheduleRunCommand(3)),
    ("doctor", DoctorCommand()),
]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_valid_commands_parse_to_typed_objects(text: str, expected: object) -> None:
    assert parse(text) == expected


INVALID = [
    ("isolte tag:x --reason r", ["'isolte'", "isolate"]),
    ("isolate tags:x --reason r", ["'tags:'", "tag:x"]),
    ("isolate --reasn r tag:x", ["--reasn", "--reason"]),
    ("isolate tag:x", ["--reason"]),
    ("isolate --reason r", ["needs a target"]),
    ('isolate tag:"open --reason r', ["never closed"]),
    ("isolate ip:10.0.0.300 --reason r", ["'10.0.0.300' is not an IP"]),
    ("isolate tag:x --reason r --canary 0", ["--canary", "1 to 1000"]),
    ("scan tag:x --reason r --type full", ["--type does not apply to scan"]),
    ("isolate tag:x --reason r --type partial", ["full or selective or unmanaged"]),
    ("isolate tag:x --reason", ["--reason needs a value"]),
    ("isolate tag:x --reason ''", ["--reason is empty"]),
    ("reject 3", ["reject needs --reason"]),
    ("approve twelve", ["'twelve' is not a request number"]),
    ("tag tag:x --reason r", ["tag value before the targets"]),
    ("isolate " + "x" * 5000, ["limit is 4000"]),
    ("schedule", ["needs a sub-command", "schedule list"]),
    ("schedule lsit", ["'lsit' is not a schedule command", "schedule list"]),
    ("schedule tag DC query:x every frid 06:00 --reason r", ["'frid' is not a day", "fri"]),
    ("schedule tag DC query:x every fri 25:00 --reason r", ["'25:00' is not a time", "UTC"]),
    ("schedule tag DC query:x every fri --reason r", ["needs a time of day", "every fri 06:00"]),
    ("schedule tag DC query:x every fri 06:00 CET --reason r", ["'CET'", "Times are UTC"]),
    ("schedule tag DC query:x every 0h --reason r", ["1 to 168 hours"]),
    ("schedule tag DC query:x every 6h 06:00 --reason r", ["takes no time of day"]),
    ("schedule tag DC query:x --reason r", ["needs a cadence", "every fri 06:00"]),
    ("schedule tag DC query:x every --reason r", ["every needs a cadence"]),
    ("schedule tag DC query:x every fri 06:00", ["--reason"]),
    ("schedule tag DC tag:x every fri 06:00 --reason r", ['query:"<KQL returning DeviceId>"']),
    ("schedule tag DC query:a query:b every fri 06:00 --reason r", ["One query per schedule"]),
    ("schedule tag query:x every fri 06:00 --reason r", ["tag value before the query"]),
    ("schedule tag --reason r", ["needs the tag first"]),
    ("schedule remove 3", ["schedule remove needs --reason"]),
    ("schedule remove --reason r", ["needs a schedule number"]),
    ("schedule run three", ["'three' is not a schedule number"]),
    ("schedule run 3 --sync", ["--sync applies to schedule tag only"]),
    ("schedule tag DC query:x every fri 06:00 --reason r --canary 2", ["--canary does not apply to schedule"]),
    ("doctor please", ["doctor takes nothing more"]),
    ("docter", ["'docter' is not a command", "doctor"]),
]


@pytest.mark.parametrize(("text", "fragments"), INVALID)
def test_invalid_commands_name_the_token_and_the_fix(text: str, fragments: list[str]) -> None:
    said = parse_error(text)
    for fragment in fragments:
        assert fragment in said


@given(st.text(max_size=300))
@settings(max_examples=400, deadline=None)
def test_arbitrary_text_is_a_command_or_a_parse_error(text: str) -> None:
    try:
        parse(text)
    except ParseError as exc:
        assert exc.message


@given(st.lists(st.sampled_from(WORDS), max_size=12).map(" ".join))
@settings(max_examples=600, deadline=None)
def test_grammar_shaped_noise_never_escapes_as_another_error(text: str) -> None:
    with contextlib.suppress(ParseError):
        parse(text)


@pytest.mark.parametrize("value", ["Domain Controllers", "O'Brien's laptops", 'quote " inside', "plain"])
def test_targets_round_trip_through_their_text(value: str) -> None:
    target = Target(TargetKind.TAG, value)
    text = f"isolate {target} --reason r" if '"' not in value else 'isolate tag:"quote \\" inside" --reason r'
    assert parse(text) == ActionCommand(Verb.ISOLATE, (target,), reason="r")


def test_help_lists_every_verb_and_each_verbs_options() -> None:
    overview = help_text(prefix="/mde")
    for verb in VERBS:
        assert f"/mde {verb.value}" in overview
        detail = help_text(verb.value, prefix="@mde")
        assert detail.startswith("@mde ")
        for option in VERBS[verb].options:
            assert f"--{option.name}" in detail


def test_schedule_help_shows_every_sub_command_and_says_times_are_utc() -> None:
    detail = help_text("schedule", prefix="/mde")
    for usage in ("/mde schedule tag", "/mde schedule list", "/mde schedule remove ID", "/mde schedule run ID"):
        assert usage in detail
    assert "every mon,thu 22:30" in detail and "every 6h" in detail
    assert "Times are UTC" in detail
    assert "/mde doctor" in help_text(prefix="/mde")


def test_help_for_an_unknown_topic_suggests() -> None:
    assert "help isolate" in help_text("isolat")
