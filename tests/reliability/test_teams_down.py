"""Teams' Bot Connector answers 503 for a while: the run goes on, its reports queue in the database and
reach the channel later, in order, through the real Teams surface."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from approvals.outbox.models import DeliveryCursor, Event
from bot.teams import cards
from tests.support.faults import summarized
from tests.support.mock_connector import CHANNEL, Sent
from tests.support.teams import TeamsRig


async def _cursor_and_last_event(rig: TeamsRig) -> tuple[int, int]:
    async with rig.stack.db.sessions() as session:
        cursor = await session.scalar(select(DeliveryCursor.last_event_id).where(DeliveryCursor.surface == "teams"))
        last = await session.scalar(select(func.max(Event.id)))
    return int(cursor or 0), int(last or 0)


def _is_summary(sent: Sent, request_id: int) -> bool:
    return sent.card is not None and f"Summary of #{request_id}" in json.dumps(sent.card)


async def test_reports_queue_while_teams_is_down_and_arrive_later_in_order(teams: TeamsRig) -> None:
    teams.stack.engine.delivery.max_backoff_s = 0.2
    await teams.post(teams.connector.message("alice", "scan device:ws-0005 device:ws-0007 --reason INC-8"))
    request_id, card = await teams.card_for_new_request()
    teams.connector.down = True
    before = len(teams.connector.sent)
    # a click is answered in its own HTTP response, so approving works while the connector is down
    approved = await teams.post(teams.connector.execute("bob", cards.VERB_APPROVE, {"request_id": request_id}))
    assert approved.status_code == 200 and approved.json()["type"] == cards.CARD_CONTENT_TYPE
    assert await summarized(teams.stack, request_id) == "succeeded"  # the run finished while Teams was down
    cursor, last = await _cursor_and_last_event(teams)
    assert cursor < last and len(teams.connector.sent) == before  # queued, not delivered, not dropped

    teams.connector.down = False
    summary = await teams.connector.wait_for(lambda s: _is_summary(s, request_id), timeout=30)
    late = teams.connector.sent[before:]
    thread = f"{CHANNEL};messageid={card.activity_id}"
    replies = [s for s in late if s.conversation_id == thread]
    texts = [s.text for s in replies if s.card is None]
    assert texts and texts[0].startswith("Approved by Bob"), texts  # the first report first
    assert replies[-1] is summary  # the summary after every other line of the thread
    assert all(s.kind == "update" and s.activity_id == card.activity_id for s in late if s not in replies)
    updates = [s for s in late if s.kind == "update"]
    assert updates and "Succeeded" in json.dumps(updates[-1].card)  # the card ends up showing the outcome
    assert teams.stack.sim.stats()["duplicate_actions"] == 0
