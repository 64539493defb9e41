"""Tables for tag schedules and their runs.

A run's ``(schedule_id, due_at)`` is unique: a replica claims an occurrence by inserting that row (after
moving the schedule's ``next_run_at`` with a conditional UPDATE), so several replicas never run one
occurrence twice.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from approvals.db import Base, UTCDateTime, utcnow


class RunState(enum.StrEnum):
    QUEUED = "queued"  # schedule run N: waits for a scheduler to claim it
    RUNNING = "running"  # claimed; a claim older than the stale limit is taken over
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the query or every MDE call failed; counts say what was done
    REFUSED = "refused"  # over the device cap: nothing was done


class Schedule(Base):
    __tablename__ = "schedules"
    __table_args__ = (Index("ix_schedules_active_next", "active", "next_run_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: the request that created it (approval); its thread receives every run's report line
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"), index=True)
    tag: Mapped[str] = mapped_column(String(200))
    kql: Mapped[str] = mapped_column(Text)
    #: canonical cadence text, e.g. "every fri 06:00" (UTC), "every 6h"
    cadence: Mapped[str] = mapped_column(String(100))
    sync: Mapped[bool] = mapped_column(Boolean, default=False)
    #: approved with break glass: protected devices are tagged too
    include_protected: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(200))
    created_by_label: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    origin_surface: Mapped[str] = mapped_column(String(32))
    origin_channel: Mapped[str] = mapped_column(String(200))
    origin_context: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ScheduleRun(Base):
    __tablename__ = "schedule_runs"
    __table_args__ = (
        UniqueConstraint("schedule_id", "due_at"),
        Index("ix_schedule_runs_state", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"))
    #: the occurrence (a cadence instant), or when ``schedule run N`` was typed
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: "scheduled" | "manual"
    kind: Mapped[str] = mapped_column(String(16), default="scheduled")
    state: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[str | None] = mapped_column(String(200))
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    found: Mapped[int] = mapped_column(Integer, default=0)
    added: Mapped[int] = mapped_column(Integer, default=0)
    already_tagged: Mapped[int] = mapped_column(Integer, default=0)
    removed: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[str]] = mapped_column(JSON, default=list)
    note: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
