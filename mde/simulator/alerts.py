"""MDE alerts as the simulator keeps them: the documented entity, seeded per tenant, filterable like MDE's.

Shape: the alert resource type (learn.microsoft.com/defender-endpoint/api/alerts, DD:alerts.md) and the
List alerts examples (learn.microsoft.com/defender-endpoint/api/get-alerts, DD:get-alerts.md): ``status`` is
Unknown, New, InProgress or Resolved; ``machineId`` is the device the alert was raised on.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from mde.simulator.timefmt import iso

#: https://learn.microsoft.com/defender-endpoint/api/get-alerts:
#: "$filter on: alertCreationTime, lastUpdateTime, incidentId, InvestigationId, id, asssignedTo,
#: detectionSource, lastEventTime, status, severity and category"
ALERT_FIELDS = {
    "alertCreationTime": "date",
    "lastUpdateTime": "date",
    "incidentId": "num",
    "investigationId": "num",
    "id": "str",
    "assignedTo": "str",
    "detectionSource": "str",
    "lastEventTime": "date",
    "status": "str",
    "severity": "str",
    "category": "str",
}
#: get-alerts.md and get-machine-related-alerts.md "Permissions": any one of these application roles
ALERT_ROLES = ("Alert.Read.All", "Alert.ReadWrite.All")
#: how likely a seeded device is to carry an unresolved alert, by its riskScore (MDE raises the score from alerts)
_ACTIVE_RATE = {"High": 0.5, "Medium": 0.1, "Low": 0.02}
_RESOLVED_RATE = 0.05


def make_alert(
    machine: dict[str, Any],
    number: int,
    *,
    status: str = "New",
    severity: str = "High",
    created: datetime | None = None,
    incident_id: int | None = None,
) -> dict[str, Any]:
    """One alert on ``machine``, in the List alerts example's shape."""
    when = created or datetime.now(UTC)
    return {
        "id": f"da{number:018d}_{machine['id'][:10]}",
        "incidentId": incident_id if incident_id is not None else 7000 + number,
        "investigationId": None,
        "assignedTo": None,
        "severity": severity,
        "status": status,
        "classification": None,
        "determination": None,
        "investigationState": "Queued",
        "detectionSource": "WindowsDefenderAtp",
        "category": "Execution",
        "threatFamilyName": None,
        "title": "Suspicious behavior was detected",
        "description": "Simulated alert.",
        "alertCreationTime": iso(when),
        "firstEventTime": iso(when - timedelta(minutes=2)),
        "lastEventTime": iso(when - timedelta(minutes=1)),
        "lastUpdateTime": iso(when),
        "resolvedTime": iso(when + timedelta(hours=1)) if status == "Resolved" else None,
        "machineId": machine["id"],
        "computerDnsName": machine["computerDnsName"],
        "rbacGroupName": machine.get("rbacGroupName"),
        "aadTenantId": "00000000-0000-0000-0000-000000000000",
        "threatName": None,
        "mitreTechniques": [],
        "relatedUser": None,
        "comments": [],
        "evidence": [],
    }


def seed_alerts(machines: list[dict[str, Any]], seed: int, now: datetime) -> list[dict[str, Any]]:
    """Alerts for a seeded tenant, from their own random stream (the devices stay exactly as they were)."""
    rng = random.Random(seed + 15485863)
    alerts: list[dict[str, Any]] = []
    for machine in machines:
        roll = rng.random()
        created = now - timedelta(hours=rng.randint(1, 72))
        if roll < _ACTIVE_RATE.get(machine.get("riskScore") or "", 0.0):
            status = "New" if rng.random() < 0.7 else "InProgress"
            alerts.append(make_alert(machine, len(alerts), status=status, created=created))
        elif roll > 1 - _RESOLVED_RATE:
            alerts.append(make_alert(machine, len(alerts), status="Resolved", severity="Medium", created=created))
    return alerts
