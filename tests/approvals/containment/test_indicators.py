"""block / unblock / indicators end to end: grammar, policy rules, the card's warnings, approval, the durable
job's MDE call, audit and the thread; over the simulator's HTTP API (post/get/delete indicators)."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from sqlalchemy import select

from approvals.audit.models import AuditEntry
from approvals.commands.grammar import parse
from approvals.db import utcnow
from approvals.policy import Policy
from bot.console.surface import ConsoleSurface
from mde.simulator.tenant import COMMON_FILE, RARE_FILE
from tests.support.actors import ALICE, BOB, HERE
from tests.support.events import notes
from tests.support.grammar import parse_error
from tests.support.stack import Stack

USERS = ["console:alice", "console:bob"]


def _policy(**protection: object) -> Policy:
    return Policy.from_dict({"defaults": {"requesters": USERS, "approvers": USERS}, "protection": dict(protection)})


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("block hash:abc --reason r", "has 3 hex digits"),
        ("block sha1:" + "a" * 64 + " --reason r", "A SHA1 has 40 hex digits"),
        ("block ip:10.1.2.3 --reason r", "internal address"),
        ("block ip:198.51.100.0/24 --reason r", "no CIDR"),
        ("block domain:localhost --reason r", "not a domain name"),
        ("block url:ftp://evil.example.com/x --reason r", "not an http(s) URL"),
        ("block domain:evil.example.com", 'needs --reason "…"'),
        ("block domain:evil.example.com --for 0d --reason r", "--for takes a duration"),
        ("block domain:evil.example.com --action quarantine --reason r", "--action takes block or audit or warn"),
    ],
)
def test_bad_indicators_get_one_clear_sentence(text: str, says: str) -> None:
    assert says in parse_error(text)


async def test_block_a_common_hash_warns_then_runs_once_on_approval_and_is_listed(db_kind: str) -> None:
    async with Stack.start(db_kind=db_kind, devices=100, policy=_policy()) as stack:
        reply = await stack.chatops.handle(
            ALICE, HERE, f'block hash:{COMMON_FILE[0]} --for 7d --reason "INC-9 dropper"'
        )
        assert not reply.error and reply.request is not None, reply.text
        view = reply.request
        assert view.devices_label == "tenant-wide" and view.action_label.startswith("Indicator FileSha1")
        assert view.warnings[0] == f"Indicator: FileSha1 {COMMON_FILE[0]} → Block (MDE raises an alert when it matches)"
        assert view.warnings[1] == "Scope: every device in the tenant"
        assert view.warnings[2].startswith("Expires: ") and "(in 7 days)" in view.warnings[2]
        assert any(w.startswith("Common file: MDE saw it on 90 devices") for w in view.warnings)
        assert stack.sim.indicators.rows == {}, "nothing is submitted before approval"

        refused = await stack.chatops.decide(ALICE, view.id, approve=True)
        assert refused.error
        assert not (await stack.chatops.decide(BOB, view.id, approve=True)).error
        assert await stack.wait_for_state(view.id, {"succeeded"}) == "succeeded"

        (row,) = stack.sim.indicators.rows.values()
        assert (row["indicatorType"], row["action"], row["application"]) == ("FileSha1", "Block", "mde-chatops")
        assert f"[mde-chatops #{view.id}]" in row["description"] and row["generateAlert"] is True
        expires = utcnow() + timedelta(days=7)
        assert row["expirationTime"][:13] == f"{expires:%Y-%m-%dT%H}"
        assert f"Indicator {row['id']} is in MDE" in (await notes(stack, view.id))[-1]
        async with stack.db.sessions() as session:
            events = list(
                await session.scalars(
                    select(AuditEntry.event).where(AuditEntry.request_id == view.id).order_by(AuditEntry.id)
                )
            )
        assert events.count("indicator.applied") == 1 and events[-1] == "request.finished"
        final = await stack.chatops.view(view.id)
        assert final.progress is None and final.state == "succeeded"

        listing = (await stack.chatops.handle(ALICE, HERE, "indicators")).text
        assert f"FileSha1 {COMMON_FILE[0]} → Block" in listing and f"request #{view.id}" in listing
        assert "expires soon" in listing


async def test_a_rare_hash_and_an_unseen_one_say_so() -> None:
    async with Stack.start(devices=50, policy=_policy(), start_engine=False) as stack:
        rare = await stack.chatops.handle(ALICE, HERE, f"block hash:{RARE_FILE[1]} --reason r")
        assert rare.request is not None and not any("Common file" in w for w in rare.request.warnings)
        unseen = await stack.chatops.handle(ALICE, HERE, f"block md5:{'e' * 32} --reason r")
        assert unseen.request is not None
        assert "MDE has not seen this file in the organization in the last 30 days." in unseen.request.warnings


async def test_never_block_rules_refuse_and_allowlisted_ranges_warn() -> None:
    policy = _policy(
        never_block=["domain:contoso.com", "ip:198.51.100.0/24", f"hash:{RARE_FILE[1]}"],
        allowlisted_ip_ranges=["203.0.113.0/24"],
    )
    async with Stack.start(devices=50, policy=policy, start_engine=False) as stack:
        for text in (
            "block domain:login.contoso.com --reason r",
            "block url:https://contoso.com/x --reason r",
            "block ip:198.51.100.9 --reason r",
            f"block hash:{RARE_FILE[1]} --reason r",
        ):
            reply = await stack.chatops.handle(ALICE, HERE, text)
            assert reply.error and reply.text.startswith("Refused: the policy never blocks"), text
        warned = await stack.chatops.handle(ALICE, HERE, "block ip:203.0.113.50 --reason r")
        assert warned.request is not None
        assert any("allow-listed range 203.0.113.0/24" in w for w in warned.request.warnings)
        assert stack.sim.indicators.rows == {}


async def test_expiry_is_capped_by_the_policy_and_dry_run_requests_nothing() -> None:
    async with Stack.start(devices=50, policy=_policy(), start_engine=False) as stack:
        too_long = await stack.chatops.handle(ALICE, HERE, "block domain:evil.example.com --for 26w --reason r")
        assert too_long.error and "at most 90 days" in too_long.text
        dry = await stack.chatops.handle(ALICE, HERE, "block domain:evil.example.com --dry-run --reason r")
        assert not dry.error and dry.request is None and "Dry run" in dry.text
        assert "Scope: every device in the tenant" in dry.text
        assert (await stack.chatops.handle(ALICE, HERE, "status")).text == "No request is open."


async def test_unblock_removes_only_what_the_bot_created() -> None:
    async with Stack.start(devices=50, policy=_policy()) as stack:
        stack.sim.indicators.submit(
            {"indicatorValue": "portal.example.com", "indicatorType": "DomainName", "action": "Block",
             "title": "t", "description": "d", "application": "portal"}
        )  # fmt: skip
        theirs = await stack.chatops.handle(ALICE, HERE, 'unblock domain:portal.example.com --reason "fp"')
        assert theirs.error and "No active indicator this bot created" in theirs.text

        created = await stack.chatops.handle(ALICE, HERE, 'block domain:evil.example.com --groups "Finance" --reason r')
        assert created.request is not None and "Scope: device groups Finance" in created.request.warnings
        await stack.chatops.decide(BOB, created.request.id, approve=True)
        await stack.wait_for_state(created.request.id, {"succeeded"})
        ours = next(r for r in stack.sim.indicators.rows.values() if r["indicatorValue"] == "evil.example.com")
        assert ours["rbacGroupNames"] == ["Finance"]

        reply = await stack.chatops.handle(ALICE, HERE, 'unblock domain:evil.example.com --reason "contained"')
        assert reply.request is not None and reply.request.warnings[0].startswith(f"Removes indicator {ours['id']}")
        await stack.chatops.decide(BOB, reply.request.id, approve=True)
        assert await stack.wait_for_state(reply.request.id, {"succeeded"}) == "succeeded"
        assert [r["indicatorValue"] for r in stack.sim.indicators.rows.values()] == ["portal.example.com"]
        assert (await stack.chatops.handle(ALICE, HERE, "indicators")).text.startswith("This bot has no active")


async def test_block_needs_its_own_permission_in_the_policy() -> None:
    policy = Policy.from_dict(
        {
            "defaults": {"requesters": USERS, "approvers": USERS},
            "actions": {"block": {"requesters": ["console:carol"], "approvers": USERS}},
        }
    )
    async with Stack.start(devices=50, policy=policy, start_engine=False) as stack:
        reply = await stack.chatops.handle(ALICE, HERE, "block domain:evil.example.com --reason r")
        assert reply.error and "You may not request block" in reply.text
        unblock = await stack.chatops.handle(ALICE, HERE, "unblock domain:evil.example.com --reason r")
        assert unblock.error and "You may not request unblock" in unblock.text


async def test_the_console_card_and_thread_show_the_indicator() -> None:
    out = io.StringIO()
    async with Stack.start(lambda _c: [ConsoleSurface(out)], devices=50, policy=_policy()) as stack:
        reply = await stack.chatops.handle(ALICE, HERE, "block url:https://evil.example.com/payload --reason r")
        assert reply.request is not None
        await stack.chatops.decide(BOB, reply.request.id, approve=True)
        await stack.wait_for_state(reply.request.id, {"succeeded"})
    text = out.getvalue()
    assert "Indicator Url https://evil.example.com/payload → Block" in text
    assert "Devices: tenant-wide" in text and "⚠ Scope: every device in the tenant" in text
    assert "is in MDE: Url https://evil.example.com/payload → Block on every device" in text
    assert f"Summary of #{reply.request.id}: Succeeded." in text


@pytest.mark.parametrize("verb", ["block", "unblock", "indicators"])
def test_help_shows_usage_and_examples_that_parse(verb: str) -> None:
    from approvals.commands.help import help_text
    from approvals.commands.spec import VERBS
    from approvals.verbs import Verb

    text = help_text(verb, prefix="/mde")
    assert text.startswith(f"/mde {verb}") and "Examples:" in text
    for example in VERBS[Verb(verb)].examples:
        parse(example)  # raises ParseError if an example is wrong
    assert f"/mde {verb} " in help_text(None, prefix="/mde")
