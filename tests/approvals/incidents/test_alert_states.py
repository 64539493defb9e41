"""Each alert's own id, status and severity are kept on its incident, so the evidence shows which alerts are
resolved, while an alert never changes the incident's own status, title or severity."""

from __future__ import annotations

import copy
import json

from sqlalchemy import select

from approvals.incidents.models import IncidentEvent, IncidentRecord
from approvals.incidents.payloads import parse_incident
from approvals.incidents.rules import RuleSet
from tests.support.incidents import graph_incident
from tests.support.stack import Stack

WAR_ROOM = RuleSet.model_validate(
    {"rules": [{"name": "war-room", "when": {}, "post": [{"surface": "console", "channel": "soc"}]}]}
)
HOSTS = ["ws-0001.contoso.local", "ws-0002.contoso.local"]


def test_a_graph_incident_reads_each_alerts_own_status_and_severity() -> None:
    body = graph_incident("7001", hosts=HOSTS)
    body["alerts"][1].update(status="resolved", severity="low")
    states = [(a.id, a.status, a.severity) for a in parse_incident(body).alerts]
    assert states == [("da7001_0", "new", "high"), ("da7001_1", "resolved", "low")]


def test_a_security_alert_row_is_its_own_alert_state() -> None:
    row = {"SystemAlertId": "0c1d", "AlertDisplayName": "Ransomware", "AlertSeverity": "Medium", "Status": "Resolved"}
    row["Entities"] = json.dumps([{"Type": "host", "HostName": "ws-0009"}])
    (state,) = parse_incident(row).alerts
    assert (state.id, state.status, state.severity, state.title) == ("0c1d", "Resolved", "medium", "Ransomware")


async def _incident(stack: Stack, external_id: str) -> IncidentRecord:
    async with stack.db.sessions() as session:
        record = await session.scalar(select(IncidentRecord).where(IncidentRecord.external_id == external_id))
    assert record is not None
    return record


async def test_a_resolved_alert_is_stored_as_resolved_and_the_incident_stays_active(db_kind: str) -> None:
    async with Stack.start(db_kind=db_kind, devices=20, rules=WAR_ROOM) as stack:
        body = graph_incident("7001", hosts=HOSTS)
        await stack.engine.incidents.receive(parse_incident(body), {})
        alert = copy.deepcopy(body["alerts"][0]) | {"status": "resolved", "severity": "low"}

        received = await stack.engine.incidents.receive(parse_incident(alert), {})

        record = await _incident(stack, "7001")
        assert [(a["id"], a["status"], a["severity"]) for a in record.alerts] == [
            ("da7001_0", "resolved", "low"),
            ("da7001_1", "new", "high"),
        ]
        assert (record.status, record.closed, record.severity) == ("active", False, "high")
        assert received.changed == ["alerts"] and received.requests == []
        async with stack.db.sessions() as session:
            last = await session.scalar(select(IncidentEvent).order_by(IncidentEvent.id.desc()).limit(1))
        assert last is not None and last.kind == "updated"
        assert last.payload["text"] == f"alert Alert on {HOSTS[0]} (low): new → resolved"


async def test_the_same_alert_twice_changes_nothing(db_kind: str) -> None:
    async with Stack.start(db_kind=db_kind, devices=20, rules=WAR_ROOM) as stack:
        body = graph_incident("7002", hosts=HOSTS[:1])
        await stack.engine.incidents.receive(parse_incident(body), {})
        again = await stack.engine.incidents.receive(parse_incident(body["alerts"][0]), {})
        assert again.changed == []
        assert len((await _incident(stack, "7002")).alerts) == 1
