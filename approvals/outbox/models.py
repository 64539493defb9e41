"""Events are appended in the same transaction as the change they describe; surfaces read them in order."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from approvals.db import Base, UTCDateTime, utcnow


class EventKind(enum.StrEnum):
    CREATED = "created"  # a request card must be posted
    DECISION = "decision"  # someone approved or rejected
    STATE = "state"  # the request changed state
    PROGRESS = "progress"  # n of m done
    DEVICE_FAILED = "device_failed"  # one device's action failed (payload: name, error)
    NOTE = "note"  # a line for the thread (canary passed, cancel requested, ...)
    FINISHED = "finished"  # final summary


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DeliveryCursor(Base):
    """How far a surface has delivered the feed; the lease makes one replica deliver at a time."""

    __tablename__ = "delivery_cursors"

    surface: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(Integer, default=0)
    owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MessageRefRecord(Base):
    __tablename__ = "message_refs"
    __table_args__ = (UniqueConstraint("request_id", "surface"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"))
    surface: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(200))
    message_id: Mapped[str] = mapped_column(String(200))
    context: Mapped[str | None] = mapped_column(Text)
    #: the thread the card was posted in (an incident's war-room thread), None for a top-level card
    thread_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
