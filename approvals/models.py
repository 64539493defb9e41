"""Imports every table so metadata (Alembic, ``create_all``) sees them all."""

from approvals.audit.models import AuditEntry
from approvals.db import Base
from approvals.execution.models import Job
from approvals.outbox.models import DeliveryCursor, Event, MessageRefRecord
from approvals.requests.models import Decision, RequestDevice, RequestExclusion, RequestRecord

__all__ = [
    "AuditEntry",
    "Base",
    "Decision",
    "DeliveryCursor",
    "Event",
    "Job",
    "MessageRefRecord",
    "RequestDevice",
    "RequestExclusion",
    "RequestRecord",
]
