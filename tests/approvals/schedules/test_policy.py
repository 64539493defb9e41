"""The policy governs schedules like an action: they follow the tag rules unless given their own; admins."""

from __future__ import annotations

from pathlib import Path

import pytest

from approvals.identity import Actor
from approvals.policy import Policy, PolicyError, load_policy

ALICE = Actor("slack", "U1", "alice")
BOB = Actor("slack", "U2", "bob")

POLICY = Policy.from_dict(
    {
        "defaults": {"requesters": ["slack:U2"], "approvers": ["*"], "max_devices": 500},
        "actions": {"tag": {"requesters": ["slack:U1"], "approvers": ["*"], "max_devices": 40, "approvals": 2}},
        "channels": {"slack:C-SOC": {"allow": ["schedule"]}, "slack:C-LOBBY": {"allow": ["tag"]}},
        "admins": ["slack:U2"],
    }
)


def test_a_schedule_follows_the_tag_rules_without_its_own_entry() -> None:
    assert POLICY.can_request(ALICE, "schedule", surface="slack", channel_id="C-SOC").allowed
    refused = POLICY.can_request(BOB, "schedule", surface="slack", channel_id="C-SOC")
    assert not refused.allowed and "schedule" in refused.reason
    assert POLICY.max_devices("schedule") == 40 and POLICY.required_approvals("schedule", 1) == 2


def test_an_own_schedule_entry_wins_over_the_tag_rules() -> None:
    policy = Policy.from_dict(
        {"actions": {"tag": {"requesters": ["slack:U1"]}, "schedule": {"requesters": ["slack:U2"], "max_devices": 9}}}
    )
    assert policy.can_request(BOB, "schedule", surface="slack", channel_id="C").allowed
    assert not policy.can_request(ALICE, "schedule", surface="slack", channel_id="C").allowed
    assert policy.max_devices("schedule") == 9


def test_channels_may_allow_or_leave_out_schedules() -> None:
    lobby = POLICY.can_request(ALICE, "schedule", surface="slack", channel_id="C-LOBBY")
    assert not lobby.allowed and "not allowed in this channel" in lobby.reason


def test_admins_are_listed_and_nobody_by_default() -> None:
    assert POLICY.is_admin(BOB) and not POLICY.is_admin(ALICE)
    assert not Policy.default().is_admin(BOB)


def test_a_bad_admin_principal_names_its_path(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("admins: [bob]\n", encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert "admins" in str(info.value) and "'bob' is not a principal" in str(info.value)
