"""Imports every table so metadata (Alembic, ``create_all``) sees them all."""

from approvals.audit.models import AuditEntry
from approvals.containment.models import Containment, ReconcileCursor, TimelineEntry
from approvals.db import Base, Database
from approvals.execution.models import Job
from approvals.incidents.models import (
    ConversationRecord,
    IncidentEvent,
    IncidentRecord,
    IncidentThread,
    WebhookNonce,
    WebhookReject,
)
from approvals.outbox.models import DeliveryCursor, Event, MessageRefRecord
from approvals.requests.models import Decision, RequestDevice, RequestExclusion, RequestRecord
from approvals.schedules.models import Schedule, ScheduleRun


async def create_all(db: Database) -> None:
    """Create every table directly (tests); production uses ``mde-chatops db upgrade`` (Alembic)."""
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)


__all__ = [
    "AuditEntry",
    "Base",
    "Containment",
    "ConversationRecord",
    "Decision",
    "DeliveryCursor",
    "Event",
    "IncidentEvent",
    "IncidentRecord",
    "IncidentThread",
    "Job",
    "MessageRefRecord",
    "ReconcileCursor",
    "RequestDevice",
    "RequestExclusion",
    "RequestRecord",
    "Schedule",
    "ScheduleRun",
    "TimelineEntry",
    "WebhookNonce",
    "WebhookReject",
    "create_all",
]
