"""The request state machine, written down once.

Every transition goes through ``transition()``: one conditional UPDATE (``WHERE state IN (allowed
sources)``), so two approvals clicked at the same moment, even on two processes, move a request
once; the loser sees ``False`` and reports what happened instead.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from approvals.db import utcnow


class RequestState(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    EXECUTING = "executing"
    SUCCEEDED = "succeeded"
    PARTIALLY_FAILED = "partially_failed"
    FAILED = "failed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES

    @property
    def label(self) -> str:
        return _LABELS[self]


FINAL_STATES = frozenset(
    {
        RequestState.SUCCEEDED,
        RequestState.PARTIALLY_FAILED,
        RequestState.FAILED,
        RequestState.REJECTED,
        RequestState.EXPIRED,
        RequestState.CANCELLED,
    }
)

#: target state -> the states it may be entered from
TRANSITIONS: dict[RequestState, frozenset[RequestState]] = {
    RequestState.APPROVED: frozenset({RequestState.PENDING}),
    RequestState.REJECTED: frozenset({RequestState.PENDING}),
    RequestState.EXPIRED: frozenset({RequestState.PENDING}),
    RequestState.CANCELLED: frozenset({RequestState.PENDING, RequestState.APPROVED, RequestState.EXECUTING}),
    RequestState.EXECUTING: frozenset({RequestState.APPROVED}),
    RequestState.SUCCEEDED: frozenset({RequestState.EXECUTING}),
    RequestState.PARTIALLY_FAILED: frozenset({RequestState.EXECUTING}),
    RequestState.FAILED: frozenset({RequestState.EXECUTING, RequestState.APPROVED}),
}

_LABELS = {
    RequestState.PENDING: "Waiting for approval",
    RequestState.APPROVED: "Approved, starting",
    RequestState.EXECUTING: "Executing",
    RequestState.SUCCEEDED: "Succeeded",
    RequestState.PARTIALLY_FAILED: "Partially failed",
    RequestState.FAILED: "Failed",
    RequestState.REJECTED: "Rejected",
    RequestState.EXPIRED: "Expired",
    RequestState.CANCELLED: "Cancelled",
}


def allowed(source: RequestState, target: RequestState) -> bool:
    return source in TRANSITIONS.get(target, frozenset())


async def transition(
    session: AsyncSession,
    request_id: int,
    target: RequestState,
    *,
    now: datetime | None = None,
    **values: Any,
) -> bool:
    """Move a request to ``target`` if, and only if, it is in a state allowed to reach it.

    Returns whether this call made the move. Extra column ``values`` are written in the same UPDATE.
    """
    from approvals.requests.models import RequestRecord

    sources = [s.value for s in TRANSITIONS[target]]
    stamp = now or utcnow()
    values["updated_at"] = stamp
    if target.is_final:
        values.setdefault("finished_at", stamp)
    result = await session.execute(
        update(RequestRecord)
        .where(RequestRecord.id == request_id, RequestRecord.state.in_(sources))
        .values(state=target.value, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
