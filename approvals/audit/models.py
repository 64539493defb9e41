"""Audit rows are only ever inserted; PostgreSQL additionally refuses UPDATE/DELETE by trigger."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from approvals.db import Base, UTCDateTime, utcnow


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    event: Mapped[str] = mapped_column(String(64))
    actor_key: Mapped[str] = mapped_column(String(200))
    actor_label: Mapped[str] = mapped_column(String(200))
    actor_email: Mapped[str | None] = mapped_column(String(320))
    surface: Mapped[str | None] = mapped_column(String(32))
    channel_id: Mapped[str | None] = mapped_column(String(200))
    request_id: Mapped[int | None] = mapped_column(Integer, index=True)
    verb: Mapped[str | None] = mapped_column(String(32))
    devices: Mapped[list[str]] = mapped_column(JSON, default=list)
    action_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    outcome: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    text: Mapped[str | None] = mapped_column(Text)
