"""Tables for requests, their frozen device snapshot, exclusions and decisions."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from approvals.db import Base, EnumText, UTCDateTime, utcnow
from approvals.verbs import Verb
from mde.models import ActionStatus


class DeviceState(enum.StrEnum):
    """Where one device of an approved request is (``request_devices.state``; NULL before approval).

    Lower case: our own states, before MDE knows about the device or when it never will. Capitalised: the
    status of the device's MDE action exactly as MDE spells it (``mde.models.ActionStatus``), so a row
    reads like the Defender portal. A bulk tag chunk has no MDE action and goes from queued to Succeeded
    or Failed.
    """

    HELD = "held"  # waits for the canary batch
    QUEUED = "queued"  # approved; waits for a worker (and the rate limiter)
    PENDING = ActionStatus.PENDING.value  # MDE created the action; the device has not picked it up yet
    IN_PROGRESS = ActionStatus.IN_PROGRESS.value
    SUCCEEDED = ActionStatus.SUCCEEDED.value
    FAILED = ActionStatus.FAILED.value
    TIMED_OUT = ActionStatus.TIMEOUT.value  # MDE gave up: the device did not come online in time
    CANCELLED = ActionStatus.CANCELLED.value  # cancelled in MDE, or before it was submitted
    SKIPPED = "skipped"  # never attempted: protected without break glass, or its canary batch failed
    CANCELLING = "cancelling"  # its request was cancelled: the action is being cancelled in MDE
    CANCEL_WAITING = "cancel_waiting"  # that cancel was throttled (429): waiting for MDE's Retry-After

    @classmethod
    def of(cls, status: ActionStatus) -> DeviceState:
        return cls(status.value)


FINAL_DEVICE_STATES = frozenset(
    {DeviceState.SUCCEEDED, DeviceState.FAILED, DeviceState.TIMED_OUT, DeviceState.CANCELLED, DeviceState.SKIPPED}
)
#: outcomes that count as a failure in summaries and progress
FAILED_DEVICE_STATES = frozenset({DeviceState.FAILED, DeviceState.TIMED_OUT})
#: what a summary lists under "did not succeed", each device once
NOT_SUCCEEDED_DEVICE_STATES = FINAL_DEVICE_STATES - {DeviceState.SUCCEEDED}
#: past the queue, as progress counts "submitted" (MDE has or had an action, or it was cancelled)
SUBMITTED_DEVICE_STATES = frozenset(
    {
        DeviceState.PENDING,
        DeviceState.IN_PROGRESS,
        DeviceState.SUCCEEDED,
        DeviceState.FAILED,
        DeviceState.TIMED_OUT,
        DeviceState.CANCELLED,
        DeviceState.CANCELLING,
        DeviceState.CANCEL_WAITING,
    }
)
#: a cancelled request's actions still being cancelled in MDE
CANCELLING_DEVICE_STATES = frozenset({DeviceState.CANCELLING, DeviceState.CANCEL_WAITING})


class RequestRecord(Base):
    __tablename__ = "requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    verb: Mapped[Verb] = mapped_column(EnumText(Verb, 32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(32), index=True)
    requester_key: Mapped[str] = mapped_column(String(200))
    requester_label: Mapped[str] = mapped_column(String(200))
    requester_email: Mapped[str | None] = mapped_column(String(320))
    origin_surface: Mapped[str] = mapped_column(String(32))
    origin_channel: Mapped[str] = mapped_column(String(200))
    origin_context: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    target_text: Mapped[str] = mapped_column(Text)
    required_approvals: Mapped[int] = mapped_column(Integer, default=1)
    touches_protected: Mapped[bool] = mapped_column(Boolean, default=False)
    break_glass_by: Mapped[str | None] = mapped_column(String(200))
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    canary: Mapped[int | None] = mapped_column(Integer)
    incident_id: Mapped[str | None] = mapped_column(String(200), index=True)
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: when a worker created the jobs of the approved request (in the background, after the click answered)
    jobs_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: when the job engine emitted the final summary (a cancelled request is summarized once its actions
    #: settle); only for requests the job engine runs (``Verb.runs_jobs``): a schedule request's stays empty
    #: (older schedule rows carry their creation time, which nothing reads any more)
    summarized_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome_note: Mapped[str | None] = mapped_column(Text)


class RequestDevice(Base):
    """One device of the frozen snapshot the approvers saw; execution writes its result here."""

    __tablename__ = "request_devices"
    __table_args__ = (
        UniqueConstraint("request_id", "machine_id"),
        #: a view's counts from the index alone (issue 18); also every lookup by (request, state)
        Index("ix_request_devices_request_counts", "request_id", "state", "protection", "priority"),
        #: a card's first rows and the CSV's pages, in name order without sorting every device (issue 18)
        Index("ix_request_devices_request_name", "request_id", "name", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"))
    machine_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(300))
    os_platform: Mapped[str | None] = mapped_column(String(64))
    health_status: Mapped[str | None] = mapped_column(String(64))
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    group_name: Mapped[str | None] = mapped_column(String(300))
    #: "none" | "warn" | "protected"
    protection: Mapped[str] = mapped_column(String(16), default="none")
    warning: Mapped[str | None] = mapped_column(Text)
    #: submission order, lower first (approvals.resolution.priority): incident-named, then MDE risk score
    priority: Mapped[int] = mapped_column(Integer, default=30, server_default="30")
    #: why this device is in the set, beyond the target (user: targets: "alice last logon … UTC")
    note: Mapped[str | None] = mapped_column(Text)
    state: Mapped[DeviceState | None] = mapped_column(EnumText(DeviceState, 32))
    action_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RequestExclusion(Base):
    """A device the target matched but the request will not touch, with the human reason."""

    __tablename__ = "request_exclusions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"), index=True)
    machine_id: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)


class Decision(Base):
    __tablename__ = "decisions"
    __table_args__ = (UniqueConstraint("request_id", "actor_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"), index=True)
    actor_key: Mapped[str] = mapped_column(String(200))
    actor_label: Mapped[str] = mapped_column(String(200))
    actor_email: Mapped[str | None] = mapped_column(String(320))
    approve: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(Text)
    break_glass: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
