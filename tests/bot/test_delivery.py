"""Delivery of the stored event feed to a surface: what lands in the thread when delivery catches up."""

from __future__ import annotations

import io

from approvals.identity import Origin
from approvals.outbox import service as outbox
from approvals.outbox.models import EventKind
from bot.console.repl import console_actor
from bot.console.surface import ConsoleSurface
from tests.support.schedules import DC_QUERY
from tests.support.stack import Stack

ALICE = console_actor("alice")
BOB = console_actor("bob")
HERE = Origin(surface="console", channel_id="console")


async def test_a_backlog_crossing_several_milestones_posts_one_progress_line() -> None:
    """Catching up after an outage, 25/50/75 % crossed in one batch would print the same numbers three times."""
    console = ConsoleSurface(io.StringIO())
    async with Stack.start(lambda _c: [console], devices=60, start_engine=False) as stack:
        reply = await stack.chatops.handle(ALICE, HERE, 'scan tag:"Finance Laptops" --reason "INC-7 sweep"')
        assert reply.request is not None, reply.text
        request_id = reply.request.id
        approved = await stack.chatops.handle(BOB, HERE, f"approve {request_id}")
        assert not approved.error, approved.text
        await stack.engine.delivery.drain("console")
        before = len(console.transcript)  # well under the transcript bound

        total = len(reply.request.devices)
        async with stack.db.transaction() as session:  # what a worker writes while the surface is down
            for done in (total // 3, 2 * total // 3, total - 1):
                outbox.emit(session, request_id, EventKind.PROGRESS, done=done, total=total)
        await stack.engine.delivery.drain("console")

        thread = [line for line in list(console.transcript)[before:] if line.lstrip().startswith("↳")]  # not the card
        progress = [line for line in thread if "Progress:" in line]
        assert len(progress) == 1, list(console.transcript)[before:]


async def test_a_schedule_requests_thread_says_approved_then_active_and_gets_no_summary() -> None:
    """Approval activates a schedule: no "execution is starting", no progress, no device summary; the
    schedule's own line says what follows."""
    console = ConsoleSurface(io.StringIO())
    async with Stack.start(lambda _c: [console], devices=50, start_engine=False) as stack:
        reply = await stack.chatops.handle(
            ALICE, HERE, f'schedule tag "Kerberos" query:"{DC_QUERY}" every fri 06:00 --reason "DCs"'
        )
        assert reply.request is not None, reply.text
        request_id = reply.request.id
        await stack.engine.delivery.drain("console")
        card = "\n".join(console.transcript)
        assert f"Request #{request_id} · Schedule #" in card and "Devices: per run" in card
        before = len(console.transcript)

        approved = await stack.chatops.handle(BOB, HERE, f"approve {request_id}")
        assert not approved.error, approved.text
        await stack.engine.worker.settle()
        await stack.engine.delivery.drain("console")

        shown = list(console.transcript)[before:]
        thread = [line.strip() for line in shown if line.lstrip().startswith("↳")]
        assert thread[0] == "↳ Approved by bob.", shown
        assert len(thread) == 2 and thread[1].startswith("↳ Schedule #") and "is active" in thread[1], shown
        assert not any("Summary of" in line or "Progress:" in line for line in shown), shown
        assert f"Request #{request_id} · Schedule #" in shown[-1] and "· Succeeded" in shown[-1], "the card updated"
