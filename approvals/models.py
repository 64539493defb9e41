"""Imports every table so metadata (Alembic, ``create_all``) sees them all."""

from approvals.audit.models import AuditEntry
from approvals.db import Base
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

__all__ = [
    "AuditEntry",
    "Base",
    "ConversationRecord",
    "Decision",
    "DeliveryCursor",
    "Event",
    "IncidentEvent",
    "IncidentRecord",
    "IncidentThread",
    "Job",
    "MessageRefRecord",
    "RequestDevice",
    "RequestExclusion",
    "RequestRecord",
    "Schedule",
    "ScheduleRun",
    "WebhookNonce",
    "WebhookReject",
]
