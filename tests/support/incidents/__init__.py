"""Incident payloads shaped like the documented Sentinel and Graph ones, filled with simulator devices."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((HERE / f"{name}.json").read_text(encoding="utf-8"))
    return data


def sentinel_incident(
    number: int = 1042,
    *,
    title: str = "Ransomware activity on multiple endpoints",
    severity: str = "High",
    status: str = "New",
    hosts: list[tuple[str, str | None]] | None = None,
) -> dict[str, Any]:
    """``hosts``: (hostName or FQDN, MdatpDeviceId or None)."""
    body = copy.deepcopy(load("sentinel_incident"))
    props = body["object"]["properties"]
    props.update({"incidentNumber": number, "title": title, "severity": severity, "status": status})
    if hosts is not None:
        entities = [e for e in props["relatedEntities"] if e["kind"] != "Host"]
        for name, device_id in hosts:
            short, _, domain = name.partition(".")
            entity: dict[str, Any] = {
                "id": f"/subscriptions/x/entities/{short}",
                "kind": "Host",
                "properties": {"hostName": short, "friendlyName": short, "additionalData": {}},
            }
            if domain:
                entity["properties"]["dnsDomain"] = domain
            if device_id:
                entity["properties"]["additionalData"]["MdatpDeviceId"] = device_id
            entities.append(entity)
        props["relatedEntities"] = entities
    return body


def graph_incident(
    incident_id: str,
    *,
    hosts: list[str],
    title: str = "Ransomware on several endpoints",
    status: str = "active",
    **changes: Any,
) -> dict[str, Any]:
    """A Graph security incident with its alerts expanded, one alert per host (``hosts``: DNS names), each
    alert ``new`` with device evidence; ``changes`` set top-level fields (``redirectIncidentId``…)."""
    body = copy.deepcopy(load("graph_incident"))
    template = body["alerts"][0]
    alerts = []
    for n, host in enumerate(hosts):
        alert = copy.deepcopy(template)
        alert.update(id=f"da{incident_id}_{n}", incidentId=incident_id, title=f"Alert on {host}")
        alert["evidence"][0].update(deviceDnsName=host, mdeDeviceId=None)
        alerts.append(alert)
    body.update(id=incident_id, displayName=title, status=status, alerts=alerts, **changes)
    return body
