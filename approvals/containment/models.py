"""Tables for the containment register, each device's containment timeline, and the reconciliation cursor.

A device has at most one open containment: ``open_key`` holds its machine id while the containment is
open and NULL once released, and is unique (both SQLite and PostgreSQL let NULLs repeat).
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from approvals.db import Base, UTCDateTime, utcnow


class Source(enum.StrEnum):
    BOT = "bot"  # isolated by one of our requests
    OUTSIDE = "outside"  # isolated outside the bot (portal, Sentinel, attack disruption), seen by reconciliation
    ADOPTED = "adopted"  # isolated outside the bot, then adopted into the register with a reason


class MdeState(enum.StrEnum):
    """What MDE last said about the device's isolation (from the action that changed it)."""

    ISOLATED = "isolated"
    RELEASED = "released"


class TimelineKind(enum.StrEnum):
    ISOLATED = "isolated"  # our isolate action succeeded
    RELEASED = "released"  # our unisolate action succeeded
    RELEASED_OUTSIDE = "released_outside"  # MDE reports a release we did not make
    ISOLATED_OUTSIDE = "isolated_outside"  # MDE reports an isolation we did not make
    ADOPTED = "adopted"  # an outside isolation taken into the register
    ACKNOWLEDGED = "acknowledged"  # kept isolated on purpose, with a reason: no more reminders


class Containment(Base):
    __tablename__ = "containments"
    __table_args__ = (Index("ix_containments_released_isolated", "released_at", "isolated_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    machine_id: Mapped[str] = mapped_column(String(64), index=True)
    #: the machine id while open, NULL once released: one open containment per device
    open_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    device_name: Mapped[str] = mapped_column(String(300))
    #: Full | Selective | UnManagedDevice (the MDE isolation type), or None when MDE did not say
    isolation_type: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id", ondelete="SET NULL"), index=True)
    incident_id: Mapped[str | None] = mapped_column(String(200), index=True)
    requested_by: Mapped[str] = mapped_column(String(300))
    #: approvers' labels, comma-separated; for an outside isolation, None
    approved_by: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    isolated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    planned_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    mde_state: Mapped[str] = mapped_column(String(16))
    #: the MDE action that last confirmed ``mde_state``, and when it did
    mde_action_id: Mapped[str | None] = mapped_column(String(64))
    confirmed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    released_by: Mapped[str | None] = mapped_column(String(300))
    release_request_id: Mapped[int | None] = mapped_column(Integer)
    adopted_by: Mapped[str | None] = mapped_column(String(300))
    #: the release proposed when ``planned_end`` came (time-boxed isolation), once
    release_proposal_id: Mapped[int | None] = mapped_column(Integer)
    #: the last reminder that the device is still isolated; reminders stop once acknowledged with a reason
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(300))
    acknowledged_reason: Mapped[str | None] = mapped_column(Text)


class TimelineEntry(Base):
    """One step in a device's containment history; ``action_id`` (an MDE action) is recorded at most once."""

    __tablename__ = "containment_timeline"
    __table_args__ = (Index("ix_containment_timeline_machine_at", "machine_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    machine_id: Mapped[str] = mapped_column(String(64))
    device_name: Mapped[str] = mapped_column(String(300))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str | None] = mapped_column(String(300))
    request_id: Mapped[int | None] = mapped_column(Integer)
    action_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    text: Mapped[str | None] = mapped_column(Text)


class ReconcileCursor(Base):
    """The one reconciliation cursor: how far MDE's machine actions were read, and who holds the run now."""

    __tablename__ = "containment_reconcile"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: actions created after this instant (minus an overlap for late finishers) are read next run
    read_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_calls: Mapped[int] = mapped_column(Integer, default=0)
