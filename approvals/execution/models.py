"""The job table: one row per device (bulk tag: one per chunk of at most 500 devices)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from approvals.db import Base, UTCDateTime, utcnow


class JobState(enum.StrEnum):
    HELD = "held"  # waits for the canary batch
    QUEUED = "queued"
    SUBMITTING = "submitting"  # claimed by a live worker; the MDE call may or may not have happened
    SUBMITTED = "submitted"  # MDE action id recorded; being polled
    CANCELLING = "cancelling"  # its request was cancelled: the action is to be cancelled in MDE (newest first)
    DONE = "done"
    CANCELLED = "cancelled"  # never submitted


class JobKind(enum.StrEnum):
    DEVICE = "device"
    TAG_CHUNK = "tag_chunk"
    INDICATOR = "indicator"  # one tenant-wide indicator to submit or remove (no device)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_state_next", "state", "next_attempt_at"),
        Index("ix_jobs_request", "request_id", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    machine_ids: Mapped[list[str]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    canary: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    owner: Mapped[str | None] = mapped_column(String(100))
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    action_id: Mapped[str | None] = mapped_column(String(64), index=True)
    mde_status: Mapped[str | None] = mapped_column(String(32))
    outcome: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WorkerRecord(Base):
    """A live worker process; a job held by a worker whose heartbeat went stale is taken over."""

    __tablename__ = "workers"

    owner: Mapped[str] = mapped_column(String(100), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
