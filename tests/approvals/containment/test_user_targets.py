"""user: targets end to end: the users→machines relation, each device's last logon on the card, stale ones
excluded with their date; over the simulator's HTTP API."""

from __future__ import annotations

from sqlalchemy import select

from approvals.commands.grammar import parse
from approvals.commands.models import ActionCommand, ParseError, TargetKind
from approvals.requests.models import RequestDevice
from bot.console.render import render_card
from tests.support.actors import ALICE, BOB, HERE
from tests.support.stack import Stack


def test_user_targets_parse_as_upn_or_account_and_refuse_anything_else() -> None:
    command = parse('scan user:alice@contoso.com,bob --reason "r"')
    assert isinstance(command, ActionCommand)
    assert [(t.kind, t.value) for t in command.targets] == [
        (TargetKind.USER, "alice@contoso.com"),
        (TargetKind.USER, "bob"),
    ]
    try:
        parse('scan "user:alice smith" --reason r')
    except ParseError as exc:
        assert "is not a user" in exc.message
    else:
        raise AssertionError("a user with a space parsed")


async def test_user_target_lists_recent_logons_and_excludes_stale_ones() -> None:
    async with Stack.start(devices=120) as stack:
        reply = await stack.chatops.handle(ALICE, HERE, 'scan user:alice@contoso.com --reason "INC-7 phished"')
        assert not reply.error and reply.request is not None, reply.text
        view = reply.request
        assert len(view.devices) == 2
        assert all(d.note and d.note.startswith("alice last logon ") for d in view.devices)
        stale = [e for e in view.exclusions if e.kind == "stale_logon"]
        assert len(stale) == 1 and "older than 30 days" in stale[0].reason
        card = render_card(view)
        assert "alice last logon" in card and "older than 30 days" in card
        paths = [e.path for e in stack.sim.request_log]
        assert "/api/users/alice/machines" in paths
        assert sum(p.endswith("/logonusers") for p in paths) == 3
        decision = await stack.chatops.decide(BOB, view.id, approve=True)
        assert not decision.error, decision.text
        assert await stack.wait_for_state(view.id, {"succeeded"}) == "succeeded"
        scanned = sorted(a.machine_id for a in stack.sim.tenant.actions.values() if a.type == "RunAntiVirusScan")
        assert scanned == sorted(d.machine_id for d in view.devices)
        async with stack.db.sessions() as session:
            notes = list(await session.scalars(select(RequestDevice.note).where(RequestDevice.request_id == view.id)))
        assert all(n and "alice" in n for n in notes)


async def test_unknown_user_is_one_clear_sentence() -> None:
    async with Stack.start(devices=50) as stack:
        reply = await stack.chatops.handle(ALICE, HERE, 'isolate user:nobody --reason "r"')
        assert reply.error and reply.text == "MDE knows no device that the user 'nobody' logged on to."
