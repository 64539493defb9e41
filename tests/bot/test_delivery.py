"""Delivery of the stored event feed to a surface: cards, thread lines, progress, summary, leases, catch-up.

Most tests drive ``bot.delivery.Delivery`` directly: a real database holds the requests and the outbox, the
events a worker would write are stored as it stores them, and a recording surface shows what reached chat.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from approvals.db import Database, utcnow
from approvals.identity import Origin
from approvals.outbox import service as outbox
from approvals.outbox.models import DeliveryCursor, EventKind
from approvals.policy import Policy
from approvals.service import ChatOps
from bot.console.repl import console_actor
from bot.console.surface import ConsoleSurface
from bot.delivery import Delivery
from mde.simulator import Simulator, SimulatorConfig
from tests.support.schedules import DC_QUERY
from tests.support.stack import Stack
from tests.support.surfaces import Call, RecordingSurface

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

        total = reply.request.device_count
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


# -- delivery driven directly: the outbox in, a recording surface out ----------------------------------------
Events = tuple[EventKind, dict[str, Any]]


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(SimulatorConfig(devices=40, time_scale=60)) as simulator:
        yield simulator


@pytest.fixture
async def chatops(db: Database, sim: Simulator) -> AsyncIterator[ChatOps]:
    """The engine's facade on a real database and the simulator over HTTP; no worker: tests store its events."""
    async with sim.connect() as client:
        yield ChatOps(db, client, Policy.demo())


@pytest.fixture
def surface() -> RecordingSurface:
    return RecordingSurface()


@pytest.fixture
def delivery(db: Database, chatops: ChatOps, surface: RecordingSurface) -> Delivery:
    return Delivery(db, chatops, [surface], owner="replica-a")


async def _requested(chatops: ChatOps, sim: Simulator, devices: int = 4) -> int:
    """A scan of ``devices`` active Windows workstations, waiting for approval."""
    names = sorted(
        m["computerDnsName"].split(".")[0]
        for m in sim.tenant.machines.values()
        if m["computerDnsName"].startswith("ws-0") and m["healthStatus"] == "Active" and not m["machineTags"]
    )[:devices]
    reply = await chatops.handle(ALICE, HERE, "scan " + " ".join(f"device:{n}" for n in names) + " --reason r")
    assert reply.request is not None and len(reply.request.devices) == devices, reply.text
    return reply.request.id


async def _approved(chatops: ChatOps, sim: Simulator, delivery: Delivery, surface: RecordingSurface) -> int:
    """An approved request of four devices whose card and approval line went out; the record starts after them."""
    request_id = await _requested(chatops, sim)
    assert not (await chatops.decide(BOB, request_id, approve=True)).error
    await delivery.drain("console")
    surface.forget()
    return request_id


async def _store(db: Database, request_id: int, *events: Events) -> None:
    """Store events in one transaction, as the worker does while a surface is away."""
    async with db.transaction() as session:
        for kind, payload in events:
            outbox.emit(session, request_id, kind, **payload)


def _progress(done: int, total: int = 4) -> Events:
    return EventKind.PROGRESS, {"done": done, "total": total}


async def _progress_line(chatops: ChatOps, request_id: int) -> str:
    """The line the current numbers make (what every progress line must show)."""
    progress = (await chatops.view(request_id)).progress
    assert progress is not None
    return f"Progress: {progress.sentence()}."


async def _cursor(db: Database, surface: str = "console") -> int:
    async with db.sessions() as session:
        value = await session.scalar(select(DeliveryCursor.last_event_id).where(DeliveryCursor.surface == surface))
    return int(value or 0)


async def test_a_new_request_gets_its_card_in_the_channel_it_came_from(
    chatops: ChatOps, sim: Simulator, delivery: Delivery, surface: RecordingSurface
) -> None:
    request_id = await _requested(chatops, sim)
    await delivery.drain("console")
    assert surface.calls == [Call("post_request", request_id, "pending")]


async def test_a_card_delivered_twice_is_posted_once(
    db: Database, chatops: ChatOps, sim: Simulator, delivery: Delivery, surface: RecordingSurface
) -> None:
    """At least once: the cursor may be lost after the card went out; the stored message ref keeps it one card."""
    request_id = await _requested(chatops, sim)
    await delivery.drain("console")
    async with db.transaction() as session:
        await session.execute(update(DeliveryCursor).values(last_event_id=0))
    await delivery.drain("console")
    assert surface.named("post_request") == [Call("post_request", request_id, "pending")]


async def test_events_of_a_request_made_elsewhere_are_passed_over_not_posted(
    db: Database, chatops: ChatOps, sim: Simulator, surface: RecordingSurface
) -> None:
    slack = RecordingSurface(name="slack")
    delivery = Delivery(db, chatops, [surface, slack], owner="replica-a")
    await _requested(chatops, sim)
    assert await delivery.deliver_once("slack") > 0
    async with db.sessions() as session:
        latest = await outbox.latest_event_id(session)
    assert slack.calls == [] and await _cursor(db, "slack") == latest
    assert await delivery.deliver_once("slack") == 0  # consumed: the cursor moved past them
    await delivery.drain("console")
    assert [c.method for c in surface.calls] == ["post_request"]


@pytest.mark.parametrize(
    ("events", "lines"),
    [
        pytest.param(
            [(EventKind.DECISION, {"by": "bob", "approvals": 1})], ["Approved by bob (1 so far)."], id="decision"
        ),
        pytest.param(
            [(EventKind.STATE, {"state": "approved", "by": "carol"})],
            ["Approved by carol; execution is starting."],
            id="approved",
        ),
        pytest.param([(EventKind.STATE, {"state": "rejected", "by": "bob"})], ["Rejected by bob."], id="rejected"),
        pytest.param([(EventKind.STATE, {"state": "expired"})], ["Expired without enough approvals."], id="expired"),
        pytest.param(
            [(EventKind.STATE, {"state": "cancelled", "by": "alice"})],
            ["Cancelled by alice; nothing more will be submitted."],
            id="cancelled",
        ),
        pytest.param([(EventKind.STATE, {"state": "executing"})], [], id="executing-says-nothing"),
        pytest.param(
            [(EventKind.DEVICE_FAILED, {"devices": ["ws-1", "ws-2"], "outcome": "Failed", "error": "refused"})],
            ["✗ ws-1, ws-2: Failed — refused"],
            id="device-failed",
        ),
        pytest.param(
            [(EventKind.DEVICE_FAILED, {"devices": [], "outcome": "Failed", "error": None})],
            ["✗ Failed — "],
            id="tenant-wide-failed",
        ),
        pytest.param(
            [(EventKind.NOTE, {"text": "Canary batch of 2 succeeded."})], ["Canary batch of 2 succeeded."], id="note"
        ),
    ],
)
async def test_each_event_becomes_its_line_in_the_cards_thread(
    db: Database,
    chatops: ChatOps,
    sim: Simulator,
    delivery: Delivery,
    surface: RecordingSurface,
    events: list[Events],
    lines: list[str],
) -> None:
    request_id = await _requested(chatops, sim)
    await delivery.drain("console")
    surface.forget()
    await _store(db, request_id, *events)
    await delivery.drain("console")
    assert surface.thread() == lines
    (ref,) = {c.ref for c in surface.calls}  # everything about the request went to its card's thread
    assert ref is not None and ref.surface == "console" and ref.channel_id == "console"


async def test_a_batch_updates_each_card_once_after_its_thread_lines(
    db: Database, chatops: ChatOps, sim: Simulator, delivery: Delivery, surface: RecordingSurface
) -> None:
    request_id = await _requested(chatops, sim)
    await delivery.drain("console")
    surface.forget()
    assert not (await chatops.decide(BOB, request_id, approve=True)).error
    await _store(
        db, request_id, (EventKind.STATE, {"state": "executing"}), _progress(0), (EventKind.NOTE, {"text": "n"})
    )
    assert await delivery.deliver_once("console") == 4
    assert [c.method for c in surface.calls] == ["post_in_thread", "post_in_thread", "update_request"]
    assert surface.calls[-1].request_id == request_id and surface.calls[-1].text == "approved"


async def test_the_summary_goes_out_with_the_results_and_nothing_after_it_in_the_batch(
    db: Database, chatops: ChatOps, sim: Simulator, delivery: Delivery, surface: RecordingSurface
) -> None:
    request_id = await _approved(chatops, sim, delivery, surface)
    await _store(db, request_id, _progress(3), (EventKind.FINISHED, {"state": "succeeded"}))
    await delivery.drain("console")
    assert [c.method for c in surface.calls] == ["update_request", "post_summary"]  # no progress line, no re-render
    summary = surface.calls[-1]
    assert summary.request_id == request_id and summary.csv is not None
    assert summary.csv.splitlines()[0].startswith("machine_id,name") and len(summary.csv.splitlines()) == 1 + 4


async def test_a_milestone_posts_a_progress_line_with_the_current_numbers(
    db: Database, chatops: ChatOps, sim: Simulator, delivery: Delivery, surface: RecordingSurface
) -> None:
    request_id = await _approved(chatops, sim, delivery, surface)
    await _store(db, request_id, _progress(0))  # 0 %: no milestone
    await delivery.drain("console")
    assert surface.thread() == []
    await _store(db, request_id, _progress(1))  # 25 %
    await delivery.drain("console")
    assert surface.thread() == [await _progress_line(chatops, request_id)]


async def test_a_caught_up_batch_crossing_several_milestones_posts_one_progress_line(
    db: Database, chatops: ChatOps, sim: Simulator, delivery: Delivery, surface: RecordingSurface
) -> None:
    """Issue 18: after an outage, 25, 50 and 75 % in one batch made three identical lines; one says it all."""
    request_id = await _approved(chatops, sim, delivery, surface)
    await _store(db, request_id, _progress(1), _progress(2), _progress(3))
    await delivery.drain("console")
    assert surface.thread() == [await _progress_line(chatops, request_id)]
    assert [c.method for c in surface.calls] == ["post_in_thread", "update_request"]


async def test_each_batch_that_crosses_a_new_milestone_posts_its_own_line(
    db: Database, chatops: ChatOps, sim: Simulator, delivery: Delivery, surface: RecordingSurface
) -> None:
    request_id = await _approved(chatops, sim, delivery, surface)
    for done in (1, 2, 3):
        await _store(db, request_id, _progress(done))
        await delivery.drain("console")
    assert len(surface.thread()) == 3


async def test_a_milestone_already_reported_is_not_reported_again(
    db: Database, chatops: ChatOps, sim: Simulator, delivery: Delivery, surface: RecordingSurface
) -> None:
    request_id = await _approved(chatops, sim, delivery, surface)
    await _store(db, request_id, _progress(2))
    await delivery.drain("console")
    await _store(db, request_id, _progress(2), _progress(1))  # a late or repeated event: 50 % was said
    await delivery.drain("console")
    assert len(surface.thread()) == 1


async def test_no_progress_line_once_the_request_is_final(
    db: Database, chatops: ChatOps, sim: Simulator, delivery: Delivery, surface: RecordingSurface
) -> None:
    """A progress event committed just after the final one: the summary already says it all."""
    request_id = await _approved(chatops, sim, delivery, surface)
    assert not (await chatops.cancel(ALICE, request_id, "wrong devices")).error
    await delivery.drain("console")
    surface.forget()
    await _store(db, request_id, _progress(2))
    await delivery.drain("console")
    assert [line for line in surface.thread() if line.startswith("Progress:")] == []


async def test_a_batch_that_fails_is_delivered_again_in_order_without_a_second_card(
    chatops: ChatOps, sim: Simulator, delivery: Delivery, surface: RecordingSurface
) -> None:
    """The cursor moves only when the whole batch went through: what failed comes again, once it can."""
    request_id = await _requested(chatops, sim)
    assert not (await chatops.decide(BOB, request_id, approve=True)).error
    surface.failing.add("post_in_thread")
    with pytest.raises(ConnectionError):
        await delivery.deliver_once("console")
    surface.failing.clear()
    await delivery.drain("console")
    assert [c.method for c in surface.calls] == ["post_request", "post_in_thread", "update_request"]
    assert surface.thread() == ["Approved by bob; execution is starting."]


async def test_a_batch_holds_at_most_the_configured_number_of_events_in_order(
    db: Database, chatops: ChatOps, sim: Simulator, surface: RecordingSurface
) -> None:
    delivery = Delivery(db, chatops, [surface], owner="replica-a", batch=2)
    request_id = await _requested(chatops, sim)
    await _store(db, request_id, *[(EventKind.NOTE, {"text": str(n)}) for n in range(4)])
    assert [await delivery.deliver_once("console") for _ in range(4)] == [2, 2, 1, 0]
    assert surface.thread() == ["0", "1", "2", "3"]


async def test_one_replica_delivers_a_surface_until_its_lease_runs_out(
    db: Database, chatops: ChatOps, sim: Simulator, delivery: Delivery, surface: RecordingSurface
) -> None:
    other_surface = RecordingSurface()
    other = Delivery(db, chatops, [other_surface], owner="replica-b")
    first = await _requested(chatops, sim)
    await delivery.drain("console")
    second = await _requested(chatops, sim, devices=2)
    assert await other.deliver_once("console") == 0  # replica-a holds the lease
    assert other_surface.calls == []
    async with db.transaction() as session:  # replica-a died: its lease runs out
        await session.execute(update(DeliveryCursor).values(lease_until=utcnow() - timedelta(seconds=1)))
    await other.drain("console")
    assert other_surface.calls == [Call("post_request", second, "pending")]  # not the first card again
    assert await delivery.deliver_once("console") == 0  # and replica-a, back, no longer delivers
    assert [c.request_id for c in surface.named("post_request")] == [first]
