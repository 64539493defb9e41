"""Incidents as received, their feed for chat surfaces, where their war-room threads live, and bodies
that were refused (kept for inspection, never silently dropped)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from approvals.db import Base, UTCDateTime, utcnow


class IncidentRecord(Base):
    __tablename__ = "incidents"
    __table_args__ = (UniqueConstraint("source", "workspace", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(16))  # sentinel | graph
    #: Sentinel numbers incidents per workspace: the workspace's ARM id (or id); "" for Graph
    workspace: Mapped[str] = mapped_column(String(300), default="", server_default="")
    external_id: Mapped[str] = mapped_column(String(300), index=True)
    title: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    closed: Mapped[bool] = mapped_column(default=False)
    product: Mapped[str | None] = mapped_column(String(200))
    url: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    entity_kinds: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: [{"mde_device_id": str | None, "dns_name": str | None}]
    devices: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    #: names of the rules already applied, so an update applies only newly matching ones
    rules: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: [{"id": str, "status": str, "severity": str, "title": str}], one per alert id, the latest state of each
    #: (an alert's status is its own, never the incident's: the evidence shows which alerts are resolved)
    alerts: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list, server_default="[]")
    #: our id of the incident this one was merged into (Graph status ``redirected``), while it stays merged:
    #: the survivor's release on close covers what was isolated under this one
    merged_into: Mapped[int | None] = mapped_column(Integer, index=True)
    raw: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IncidentEvent(Base):
    """The incidents' feed for chat surfaces (opened, updated, closed, note), read in order per surface."""

    __tablename__ = "incident_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IncidentThread(Base):
    """A channel an incident is routed to; ``message_id`` is the notification (the thread root) once posted."""

    __tablename__ = "incident_threads"
    __table_args__ = (UniqueConstraint("incident_id", "surface", "channel_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    surface: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(200))
    mention: Mapped[str | None] = mapped_column(String(200))
    rule: Mapped[str] = mapped_column(String(100))
    message_id: Mapped[str | None] = mapped_column(String(200))
    context: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookReject(Base):
    """An authenticated body that could not be read: kept with the reason, for an operator to inspect."""

    __tablename__ = "webhook_rejects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reason: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)


class ConversationRecord(Base):
    """A chat conversation the bot has seen, with what it needs to post there later (Teams reference)."""

    __tablename__ = "conversations"

    surface: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    context: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookNonce(Base):
    """A signature already accepted, so a replay inside the window is refused on every replica."""

    __tablename__ = "webhook_nonces"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
