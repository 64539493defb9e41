"""Read the incident shapes that reach ``POST /api/incidents`` into one typed ``IncidentData``.

* Microsoft Sentinel, as a playbook's HTTP action sends the incident trigger body: ``{"workspaceId",
  "object": {"id", "name", "properties": {"incidentNumber", "title", "severity", "status", "labels",
  "incidentUrl", "additionalData": {"alertProductNames"}, "relatedEntities": [{"kind": "Host",
  "properties": {"hostName", "dnsDomain", "additionalData": {"MdatpDeviceId"}}}]}}}`` — or the bare
  ``object``. Incident numbers count per workspace, so the key is the workspace (the ARM id up to
  ``/workspaces/<name>``, else ``workspaceId``) plus the number.
* Sentinel's alert trigger body (``SystemAlertId``, ``AlertDisplayName``, ``Severity``, ``Entities`` with
  ``Type: host``, ``HostName``, ``FQDN``, ``MdatpDeviceId``), and a Log Analytics ``SecurityAlert`` row
  (``Entities`` and ``ExtendedProperties`` as JSON *strings*, severity in ``AlertSeverity``).
* Microsoft Graph security ``incident`` (with ``alerts`` expanded) and ``alert`` (alerts_v2): device
  evidence ``#microsoft.graph.security.deviceEvidence`` with ``mdeDeviceId`` and ``deviceDnsName``. An alert
  that names its ``incidentId`` is folded into that incident as evidence only: its status, title and
  severity are the alert's, never the incident's. An incident whose status is ``redirected`` was merged
  into ``redirectIncidentId`` (Graph ``incident`` resource); it is not closed.
* Every alert read (a Graph alert, an incident's expanded ``alerts``, a Sentinel alert or ``SecurityAlert``
  row) is also kept as an ``AlertState`` (id, its own status and severity), so the incident's evidence shows
  which of its alerts are resolved without an alert ever changing the incident's status.

Anything else raises ``PayloadError`` with a reason meant for whoever wires the playbook.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from approvals.errors import PayloadError

MDE_ID = re.compile(r"^[0-9a-fA-F]{40}$")
SEVERITIES = ("informational", "low", "medium", "high", "critical")
CLOSED = {"closed", "resolved"}
MAX_DEVICES = 1000


@dataclass(frozen=True, slots=True)
class DeviceEntity:
    mde_device_id: str | None = None
    dns_name: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"mde_device_id": self.mde_device_id, "dns_name": self.dns_name}


@dataclass(frozen=True, slots=True)
class AlertState:
    """One alert as its source last reported it: the alert's own status and severity, not the incident's."""

    id: str
    status: str
    severity: str  # one of SEVERITIES or "unknown"
    title: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "status": self.status, "severity": self.severity, "title": self.title}


@dataclass(frozen=True, slots=True)
class IncidentData:
    source: str  # sentinel | graph
    external_id: str
    title: str
    severity: str  # one of SEVERITIES or "unknown"
    status: str
    product: str | None = None
    url: str | None = None
    tags: tuple[str, ...] = ()
    entity_kinds: frozenset[str] = field(default_factory=frozenset)
    devices: tuple[DeviceEntity, ...] = ()
    #: Sentinel: the workspace whose incident numbering ``external_id`` belongs to ("" elsewhere)
    workspace: str = ""
    #: a Graph alert folded into its incident: it adds evidence, never changes the incident's state
    alert_only: bool = False
    #: Graph ``redirected``: the incident this one was merged into
    redirect_to: str | None = None
    #: the alerts this payload reports, each with its own status (one per alert id)
    alerts: tuple[AlertState, ...] = ()

    @property
    def closed(self) -> bool:
        return not self.alert_only and self.status.lower() in CLOSED


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _severity(value: Any) -> str:
    text = str(value or "").strip().lower()
    return text if text in SEVERITIES else "unknown"


def _text(value: Any, limit: int = 500) -> str:
    return str(value if value is not None else "").strip()[:limit]


def _device_id(value: Any) -> str | None:
    text = _text(value, 80)
    return text.lower() if MDE_ID.match(text) else None


def _dedupe(devices: list[DeviceEntity]) -> tuple[DeviceEntity, ...]:
    seen: dict[tuple[str | None, str | None], DeviceEntity] = {}
    for device in devices:
        if device.mde_device_id or device.dns_name:
            seen.setdefault((device.mde_device_id, (device.dns_name or "").lower() or None), device)
    if len(seen) > MAX_DEVICES:
        raise PayloadError(f"the incident names {len(seen)} devices; at most {MAX_DEVICES} are accepted")
    return tuple(seen.values())


# -- Sentinel ---------------------------------------------------------------------------------------------
def _sentinel_host(props: dict[str, Any]) -> DeviceEntity:
    extra = _dict(props.get("additionalData"))
    device_id = _device_id(props.get("mdatpDeviceId") or extra.get("MdatpDeviceId") or props.get("MdatpDeviceId"))
    fqdn = _text(props.get("fqdn") or props.get("FQDN") or extra.get("FQDN"), 255)
    host = _text(props.get("hostName") or props.get("HostName"), 255)
    domain = _text(props.get("dnsDomain") or props.get("DnsDomain"), 255)
    dns = fqdn or (f"{host}.{domain}" if host and domain else host)
    return DeviceEntity(mde_device_id=device_id, dns_name=dns or None)


_WORKSPACE = re.compile(
    r"^(/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.operationalinsights/workspaces/[^/]+)/", re.I
)


def _workspace(obj: dict[str, Any], envelope: dict[str, Any]) -> str:
    """The workspace an incident number counts in: the ARM id's workspace part, else the workspace id."""
    match = _WORKSPACE.match(_text(obj.get("id"), 1000))
    if match:
        return match.group(1).lower()
    return _text(envelope.get("workspaceId"), 200).lower()


def _sentinel_incident(obj: dict[str, Any], envelope: dict[str, Any]) -> IncidentData:
    props = obj.get("properties")
    if not isinstance(props, dict):
        raise PayloadError("a Sentinel incident needs object.properties")
    number = props.get("incidentNumber")
    external = _text(number if number is not None else obj.get("name") or obj.get("id"), 300)
    if not external:
        raise PayloadError("a Sentinel incident needs properties.incidentNumber (or the incident's name / id)")
    entities = props.get("relatedEntities") or []
    if not isinstance(entities, list):
        raise PayloadError("properties.relatedEntities must be a list")
    kinds, devices = set(), []
    for entity in entities:
        if not isinstance(entity, dict):
            continue
        kind = _text(entity.get("kind") or entity.get("type"), 40).lower()
        if kind:
            kinds.add(kind)
        if kind == "host":
            devices.append(_sentinel_host(_dict(entity.get("properties"))))
    extra = _dict(props.get("additionalData"))
    products = _list(extra.get("alertProductNames"))
    labels = [_text(lbl.get("labelName"), 100) for lbl in _list(props.get("labels")) if isinstance(lbl, dict)]
    return IncidentData(
        source="sentinel",
        external_id=external,
        title=_text(props.get("title")) or f"Sentinel incident {external}",
        severity=_severity(props.get("severity")),
        status=_text(props.get("status"), 32) or "New",
        product=_text(products[0], 200) if products else None,
        url=_text(props.get("incidentUrl"), 1000) or None,
        tags=tuple(t for t in labels if t),
        entity_kinds=frozenset(kinds),
        devices=_dedupe(devices),
        workspace=_workspace(obj, envelope),
    )


def _entities(value: Any) -> list[Any]:
    """``Entities`` as a list: a Log Analytics ``SecurityAlert`` row carries it as a JSON string."""
    if not isinstance(value, str):
        return _list(value)
    try:
        decoded = json.loads(value) if value.strip() else []
    except (ValueError, RecursionError):
        raise PayloadError("Entities is a string that is not a JSON list of entities") from None
    if not isinstance(decoded, list):
        raise PayloadError("Entities is a string that is not a JSON list of entities")
    return decoded


def _sentinel_alert(body: dict[str, Any]) -> IncidentData:
    entities = _entities(body.get("Entities"))
    kinds, devices = set(), []
    for entity in _list(entities):
        if isinstance(entity, dict):
            kind = _text(entity.get("Type") or entity.get("type"), 40).lower()
            kinds.add(kind)
            if kind == "host":
                devices.append(_sentinel_host(entity))
    external = _text(body.get("SystemAlertId") or body.get("AlertId"), 300)
    if not external:
        raise PayloadError("a Sentinel alert needs SystemAlertId")
    title = _text(body.get("AlertDisplayName") or body.get("DisplayName")) or "Sentinel alert"
    severity = _severity(body.get("Severity") or body.get("AlertSeverity"))
    status = _text(body.get("Status"), 32) or "New"
    return IncidentData(
        source="sentinel",
        external_id=f"alert:{external}",
        title=title,
        severity=severity,
        status=status,
        product=_text(body.get("ProductName"), 200) or None,
        entity_kinds=frozenset(k for k in kinds if k),
        devices=_dedupe(devices),
        alerts=(AlertState(id=external, status=status, severity=severity, title=title[:200]),),
    )


# -- Microsoft Graph ------------------------------------------------------------------------------------
def _graph_evidence(evidence: list[Any], kinds: set[str]) -> list[DeviceEntity]:
    devices = []
    for item in evidence:
        if not isinstance(item, dict):
            continue
        odata = _text(item.get("@odata.type"), 120)
        kind = odata.rsplit(".", 1)[-1].removesuffix("Evidence").lower() if odata else ""
        if kind:
            kinds.add("host" if kind == "device" else kind)
        if kind == "device" or item.get("mdeDeviceId"):
            devices.append(
                DeviceEntity(
                    mde_device_id=_device_id(item.get("mdeDeviceId")),
                    dns_name=_text(item.get("deviceDnsName"), 255) or None,
                )
            )
    return devices


def _graph_alerts(alerts: list[dict[str, Any]]) -> tuple[AlertState, ...]:
    """Each Graph alert's own ``id``, ``status`` and ``severity`` (the alert resource's fields), once per id."""
    states: dict[str, AlertState] = {}
    for alert in alerts:
        alert_id = _text(alert.get("id"), 300)
        if alert_id:
            states[alert_id] = AlertState(
                id=alert_id,
                status=_text(alert.get("status"), 32) or "unknown",
                severity=_severity(alert.get("severity")),
                title=_text(alert.get("title"), 200),
            )
    return tuple(states.values())


def _graph(body: dict[str, Any]) -> IncidentData:
    is_alert = "evidence" in body or "incidentId" in body or "alert" in _text(body.get("@odata.type")).lower()
    alerts = [body] if is_alert else [a for a in _list(body.get("alerts")) if isinstance(a, dict)]
    kinds: set[str] = set()
    devices: list[DeviceEntity] = []
    products = []
    for alert in alerts:
        devices.extend(_graph_evidence(_list(alert.get("evidence")), kinds))
        if alert.get("serviceSource"):
            products.append(_text(alert.get("serviceSource"), 200))
    external = _text(body.get("incidentId") if is_alert else body.get("id"), 300)
    if not external and is_alert:
        external = f"alert:{_text(body.get('id'), 300)}" if body.get("id") else ""
    if not external:
        raise PayloadError("a Graph security incident needs id (an alert needs id or incidentId)")
    tags = [*_list(body.get("customTags")), *_list(body.get("systemTags"))]
    return IncidentData(
        source="graph",
        external_id=external,
        title=_text(body.get("title") if is_alert else body.get("displayName")) or f"Incident {external}",
        severity=_severity(body.get("severity")),
        status=_text(body.get("status"), 32) or "active",
        product=products[0] if products else None,
        url=_text(body.get("incidentWebUrl"), 1000) or None,
        tags=tuple(_text(t, 100) for t in tags if t),
        entity_kinds=frozenset(kinds),
        devices=_dedupe(devices),
        alert_only=is_alert and bool(body.get("incidentId")),
        # Graph incident resource (v1.0): status ``redirected`` means "merged with another incident; the target
        # incident ID appears in redirectIncidentId", which is populated only then.
        # https://learn.microsoft.com/en-us/graph/api/resources/security-incident
        redirect_to=None if is_alert else (_text(body.get("redirectIncidentId"), 300) or None),
        alerts=_graph_alerts(alerts),
    )


def parse_incident(body: Any) -> IncidentData:
    if not isinstance(body, dict):
        raise PayloadError("the body must be a JSON object")
    if isinstance(body.get("object"), dict):
        return _sentinel_incident(body["object"], body)
    if isinstance(body.get("properties"), dict) and (
        "incidentNumber" in body["properties"] or "title" in body["properties"]
    ):
        return _sentinel_incident(body, body)
    if "SystemAlertId" in body or "Entities" in body:
        return _sentinel_alert(body)
    if "alerts" in body or "evidence" in body or "incidentId" in body or "displayName" in body:
        return _graph(body)
    raise PayloadError(
        "not an incident we know: send a Sentinel incident (object.properties), a Sentinel alert "
        "(SystemAlertId, Entities) or a Microsoft Graph security incident / alert"
    )
