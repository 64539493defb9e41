"""Policy decisions, table-driven, and policy-file errors that name the bad key."""

from __future__ import annotations

from pathlib import Path

import pytest

from approvals.identity import Actor
from approvals.policy import Policy, PolicyError, load_policy
from mde.models import Machine

ALICE = Actor("slack", "U1", "alice", "alice@contoso.com", frozenset({"S-SOC"}))
BOB = Actor("slack", "U2", "bob", "bob@contoso.com", frozenset({"S-SOC"}))
BOB_ON_TEAMS = Actor("teams", "aad-bob", "bob", "Bob@contoso.com")
CAROL = Actor("teams", "aad-carol", "carol", "carol@contoso.com", frozenset({"g-responders"}))
MALLORY = Actor("slack", "U9", "mallory", "mallory@contoso.com")
DAVE = Actor("slack", "U4", "dave", "dave@contoso.com")

POLICY = Policy.from_dict(
    {
        "defaults": {
            "requesters": ["slack-group:S-SOC", "entra-group:g-responders"],
            "approvers": ["slack-group:S-SOC", "entra-group:g-responders", "email:bob@contoso.com"],
            "thresholds": [{"above": 50, "approvals": 2}],
            "max_devices": 500,
        },
        "actions": {
            "isolate": {
                "requesters": ["slack-group:S-SOC"],
                "approvers": ["slack-group:S-SOC", "email:bob@contoso.com", "slack:U4"],
                "thresholds": [{"above": 50, "approvals": 2}, {"above": 200, "approvals": 3}],
                "max_devices": 1000,
                "expiry_minutes": 15,
            }
        },
        "protection": {"break_glass": ["slack:U4"], "protected_names": ["dc-*"]},
        "channels": {"slack:C-LOBBY": {"allow": ["scan"]}},
    }
)


@pytest.mark.parametrize(
    ("actor", "verb", "channel", "allowed", "fragment"),
    [
        (ALICE, "isolate", "C1", True, "allowed"),
        (CAROL, "isolate", "C1", False, "You may not request isolate"),
        (CAROL, "scan", "C1", True, "allowed"),
        (MALLORY, "scan", "C1", False, "you are slack:U9"),
        (ALICE, "isolate", "C-LOBBY", False, "here you may request: scan"),
        (ALICE, "scan", "C-LOBBY", True, "allowed"),
        (MALLORY, "devices", "C1", True, "read-only"),
    ],
)
def test_who_may_request(actor: Actor, verb: str, channel: str, allowed: bool, fragment: str) -> None:
    decision = POLICY.can_request(actor, verb, surface=actor.platform, channel_id=channel)
    assert decision.allowed is allowed and fragment in decision.reason


@pytest.mark.parametrize(
    ("actor", "prior", "allowed", "fragment"),
    [
        (BOB, (), True, "allowed"),
        (ALICE, (), False, "your own request"),
        (BOB, ("slack:U2",), False, "already approved"),
        (BOB_ON_TEAMS, ("slack:U2", "email:bob@contoso.com"), False, "already approved"),
        (MALLORY, (), False, "needs one of"),
        (BOB_ON_TEAMS, (), True, "allowed"),
    ],
)
def test_who_may_approve(actor: Actor, prior: tuple[str, ...], allowed: bool, fragment: str) -> None:
    decision = POLICY.can_approve(
        actor,
        verb="isolate",
        requester_key=ALICE.key,
        requester_email=ALICE.email,
        surface="slack",
        channel_id="C1",
        already_approved_by=prior,
    )
    assert decision.allowed is allowed and fragment in decision.reason


def test_the_requester_can_never_approve_even_when_listed_or_on_another_platform() -> None:
    policy = Policy.from_dict({"defaults": {"requesters": ["*"], "approvers": ["*"]}})
    assert not policy.can_approve(ALICE, verb="scan", requester_key=ALICE.key, surface="slack", channel_id="C").allowed
    alice_on_teams = Actor("teams", "aad-alice", "alice", "ALICE@contoso.com")
    assert not policy.can_approve(
        alice_on_teams,
        verb="scan",
        requester_key=ALICE.key,
        requester_email=ALICE.email,
        surface="slack",
        channel_id="C",
    ).allowed


@pytest.mark.parametrize(
    ("verb", "count", "needed"),
    [
        ("isolate", 1, 1),
        ("isolate", 50, 1),
        ("isolate", 51, 2),
        ("isolate", 201, 3),
        ("scan", 51, 2),
        ("scan", 500, 2),
    ],
)
def test_approvals_needed_grow_with_the_blast_radius(verb: str, count: int, needed: int) -> None:
    assert POLICY.required_approvals(verb, count) == needed


def test_limits_and_expiry_per_action() -> None:
    assert POLICY.max_devices("isolate") == 1000 and POLICY.max_devices("tag") == 500
    assert POLICY.expiry_for("isolate").total_seconds() == 900
    assert POLICY.expiry_for("scan").total_seconds() == 1800


def _machine(name: str, tags: tuple[str, ...] = (), group: str | None = None) -> Machine:
    return Machine(id="a" * 40, computer_dns_name=name, machine_tags=tags, rbac_group_name=group)


@pytest.mark.parametrize(
    ("machine", "level"),
    [
        (_machine("ws-1.contoso.local"), "none"),
        (_machine("jump.contoso.local", ("Restricted security operations",)), "protected"),
        (_machine("dc-01.contoso.local"), "protected"),
        (_machine("hv-host-01.contoso.local"), "warn"),
        (_machine("srv-1.contoso.local", ("Hyper-V Host",)), "warn"),
    ],
)
def test_protection_classification(machine: Machine, level: str) -> None:
    protection = POLICY.classify(machine)
    assert protection.level == level
    assert (protection.reason is None) == (level == "none")


def test_break_glass_is_a_role() -> None:
    assert POLICY.can_break_glass(DAVE) and not POLICY.can_break_glass(BOB)
    refused = POLICY.can_approve(
        BOB,
        verb="isolate",
        requester_key=ALICE.key,
        surface="slack",
        channel_id="C",
        touches_protected=True,
        break_glass=True,
    )
    assert not refused.allowed and "break-glass" in refused.reason


def test_without_a_policy_file_nobody_on_chat_may_act() -> None:
    policy = load_policy(None)
    decision = policy.can_request(ALICE, "isolate", surface="slack", channel_id="C")
    assert not decision.allowed and "policy file" in decision.reason


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("defaults:\n  approvers: ['bob']\n", "defaults.approvers: Value error, 'bob' is not a principal"),
        ("actions:\n  nuke: {}\n", "'nuke' is not an action"),
        ("defaults:\n  max_devices: lots\n", "defaults.max_devices"),
        ("defaults:\n  surprise: 1\n", "defaults.surprise"),
        ("channels:\n  slack:C1:\n    allow: [format]\n", "'format' is not an action"),
        ("- just a list\n", "top level must be a mapping"),
        ("defaults: [unclosed\n", "not valid YAML"),
    ],
)
def test_policy_file_errors_name_the_path(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert fragment in str(info.value) and str(path) in str(info.value)


def test_missing_policy_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="does not exist"):
        load_policy(tmp_path / "nope.yaml")


def test_the_shipped_example_policy_loads() -> None:
    policy = load_policy(Path(__file__).parents[3] / "examples" / "policy.yaml")
    assert policy.required_approvals("isolate", 100) >= 2


def test_without_thresholds_more_than_50_devices_need_two_approvers_and_an_empty_list_turns_it_off() -> None:
    """The documented default: a policy that never mentions ``thresholds`` still asks for two above 50."""
    silent = Policy.from_dict({"defaults": {"requesters": ["*"], "approvers": ["*"]}})
    assert (silent.required_approvals("isolate", 50), silent.required_approvals("isolate", 51)) == (1, 2)
    off = Policy.from_dict({"defaults": {"requesters": ["*"], "approvers": ["*"], "thresholds": []}})
    assert off.required_approvals("isolate", 5000) == 1
