"""The request state machine: the table, and the one conditional UPDATE that enforces it."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from approvals.db import Database
from approvals.models import create_all
from approvals.requests.models import RequestRecord
from approvals.requests.states import FINAL_STATES, TRANSITIONS, RequestState, allowed, transition


def _record(state: RequestState = RequestState.PENDING) -> RequestRecord:
    now = datetime.now(UTC)
    return RequestRecord(
        verb="isolate",
        params={},
        state=state.value,
        requester_key="console:alice",
        requester_label="alice",
        origin_surface="console",
        origin_channel="c",
        target_text="tag:x",
        required_approvals=1,
        created_at=now,
        updated_at=now,
        expires_at=now + timedelta(minutes=30),
    )


async def _insert(db: Database, state: RequestState = RequestState.PENDING) -> int:
    async with db.transaction() as session:
        record = _record(state)
        session.add(record)
        await session.flush()
        return record.id


async def _state(db: Database, request_id: int) -> str:
    async with db.sessions() as session:
        record = await session.get(RequestRecord, request_id)
        assert record is not None
        return record.state


def test_final_states_have_no_way_out() -> None:
    for target, sources in TRANSITIONS.items():
        assert not (sources & FINAL_STATES), f"{target} can be entered from a final state"


def test_documented_paths_are_allowed() -> None:
    path = [RequestState.PENDING, RequestState.APPROVED, RequestState.EXECUTING, RequestState.SUCCEEDED]
    assert all(allowed(a, b) for a, b in itertools.pairwise(path))
    for end in (RequestState.REJECTED, RequestState.EXPIRED, RequestState.CANCELLED):
        assert allowed(RequestState.PENDING, end)
    assert allowed(RequestState.EXECUTING, RequestState.CANCELLED)
    assert not allowed(RequestState.PENDING, RequestState.EXECUTING)
    assert not allowed(RequestState.REJECTED, RequestState.APPROVED)


async def test_transition_moves_only_from_an_allowed_state(db: Database) -> None:
    request_id = await _insert(db)
    async with db.transaction() as session:
        assert not await transition(session, request_id, RequestState.SUCCEEDED)
    assert await _state(db, request_id) == "pending"
    async with db.transaction() as session:
        assert await transition(session, request_id, RequestState.APPROVED)
    async with db.transaction() as session:
        assert not await transition(session, request_id, RequestState.APPROVED), "approved twice"
    assert await _state(db, request_id) == "approved"


async def test_two_sessions_racing_for_one_transition_only_one_wins(db: Database) -> None:
    request_id = await _insert(db)

    async def attempt() -> bool:
        async with db.transaction() as session:
            return await transition(session, request_id, RequestState.APPROVED)

    results = await asyncio.gather(*(attempt() for _ in range(8)))
    assert sorted(results) == [False] * 7 + [True]


class StateMachineAgainstSqlite(RuleBasedStateMachine):
    """Random transition attempts: the stored state always equals the model, and only legal moves happen."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.db = Database("sqlite+aiosqlite:///:memory:")
        self.loop.run_until_complete(create_all(self.db))
        self.request_id = 0
        self.model = RequestState.PENDING

    @initialize()
    def create(self) -> None:
        self.request_id = self.loop.run_until_complete(_insert(self.db))

    @rule(goal=st.sampled_from(sorted(TRANSITIONS, key=str)))
    def try_transition(self, goal: RequestState) -> None:
        async def go() -> bool:
            async with self.db.transaction() as session:
                return await transition(session, self.request_id, goal)

        moved = self.loop.run_until_complete(go())
        assert moved == allowed(self.model, goal)
        if moved:
            self.model = goal
        assert self.loop.run_until_complete(_state(self.db, self.request_id)) == self.model.value

    def teardown(self) -> None:
        self.loop.run_until_complete(self.db.dispose())
        self.loop.close()


TestStateMachineAgainstSqlite = StateMachineAgainstSqlite.TestCase
TestStateMachineAgainstSqlite.settings = settings(max_examples=25, stateful_step_count=12, deadline=None)


@pytest.mark.parametrize("state", list(RequestState))
def test_every_state_has_a_label(state: RequestState) -> None:
    assert state.label
