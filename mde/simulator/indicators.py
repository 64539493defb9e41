"""Threat indicators as the MDE indicator API documents them.

Doc pages (MicrosoftDocs/defender-docs, defender-endpoint/api/):
* post-ti-indicator.md: POST /api/indicators submits **or updates** (same type and value) an indicator;
  required indicatorValue, indicatorType, action, title, description; ``Audit`` needs ``generateAlert``
  true; ``application`` is kept from creation and not updated; CIDR notation for IPs is not supported;
  15,000 active indicators per tenant; 200 with the entity, 400 for a bad body.
* ti-indicator.md: the entity's fields; the supported actions are Allowed, Audit, Block,
  BlockAndRemediate and Warn (Alert and AlertAndBlock were supported only until January 2022).
* get-ti-indicators-collection.md: GET lists *active* indicators, ``$filter`` on application,
  createdByDisplayName, expirationTime, generateAlert, title, rbacGroupNames, rbacGroupIds,
  indicatorValue, indicatorType, creationTimeDateTimeUtc, createdBy, action and severity.
* delete-ti-indicator-by-id.md: DELETE /api/indicators/{id}: 204, or 404 when there is no such id.
* common-errors.md: the 400 codes InvalidHashValue, InvalidIpAddress, InvalidDomainName, InvalidUrl.
* indicator-ip-domain.md (defender-endpoint/): "Only external IPs can be added to the indicator list.
  Indicators can't be created for internal IPs." Which error code the API answers is UNCONFIRMED; the
  simulator uses InvalidIpAddress.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime
from typing import Any

from mde.simulator.errors import ApiError, required
from mde.simulator.timefmt import iso

TYPES = ("FileSha1", "FileSha256", "FileMd5", "CertificateThumbprint", "IpAddress", "DomainName", "Url")
ACTIONS = ("Allowed", "Audit", "Block", "BlockAndRemediate", "Warn")
RETIRED_ACTIONS = ("Alert", "AlertAndBlock")
SEVERITIES = ("Informational", "Low", "Medium", "High")
HASH_LENGTHS = {"FileSha1": 40, "FileSha256": 64, "FileMd5": 32, "CertificateThumbprint": 40}
MAX_ACTIVE = 15000
FIELDS = {
    "id": "str",
    "application": "str",
    "createdByDisplayName": "str",
    "expirationTime": "date",
    "title": "str",
    "indicatorValue": "str",
    "indicatorType": "str",
    "creationTimeDateTimeUtc": "date",
    "createdBy": "str",
    "action": "str",
    "severity": "str",
}
#: the application id the simulated token belongs to (createdBy of what it submits)
APP_ID = "00000000-0000-0000-0000-00000000c4a7"
#: documentation ranges (RFC 5737, 3849) count as external here, so examples can use them
DOCUMENTATION = tuple(
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
)
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def _validate_value(kind: str, value: str) -> None:
    if kind in HASH_LENGTHS:
        if len(value) != HASH_LENGTHS[kind] or not _HEX.match(value):
            raise ApiError(400, "InvalidHashValue", f"'{value}' is not a valid {kind} value")
    elif kind == "IpAddress":
        if "/" in value:
            raise ApiError(400, "InvalidIpAddress", "CIDR notation for IPs isn't supported")
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise ApiError(400, "InvalidIpAddress", f"'{value}' is not a valid IP address") from None
        if address.is_private and not any(address in net for net in DOCUMENTATION if net.version == address.version):
            raise ApiError(400, "InvalidIpAddress", "Indicators can't be created for internal IPs")
    elif kind == "DomainName":
        labels = value.rstrip(".").split(".")
        if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
            raise ApiError(400, "InvalidDomainName", f"'{value}' is not a valid domain name")
    elif kind == "Url" and (" " in value or "." not in value):
        raise ApiError(400, "InvalidUrl", f"'{value}' is not a valid URL")


def _expiry(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "InvalidRequestBody", f"expirationTime '{value}' is not a date-time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class IndicatorStore:
    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self._next = 1000

    def active(self, now: datetime | None = None) -> list[dict[str, Any]]:
        now = now or datetime.now(UTC)
        return [r for r in self.rows.values() if (e := _expiry(r.get("expirationTime"))) is None or e > now]

    def submit(self, body: Any) -> dict[str, Any]:
        value = str(required(body, "indicatorValue")).strip()
        kind = required(body, "indicatorType")
        action = required(body, "action")
        title, description = required(body, "title"), required(body, "description")
        if kind not in TYPES:
            raise ApiError(400, "InvalidInput", f"indicatorType must be one of {', '.join(TYPES)}")
        if action in RETIRED_ACTIONS or action not in ACTIONS:
            raise ApiError(400, "InvalidInput", f"action must be one of {', '.join(ACTIONS)}")
        severity = body.get("severity")
        if severity is not None and severity not in SEVERITIES:
            raise ApiError(400, "InvalidInput", f"severity must be one of {', '.join(SEVERITIES)}")
        alert = body.get("generateAlert")
        if action == "Audit" and str(alert).lower() != "true":
            raise ApiError(400, "InvalidInput", "The GenerateAlert parameter must be set to TRUE for Audit")
        _validate_value(kind, value)
        expiry = _expiry(body.get("expirationTime"))
        groups = body.get("rbacGroupNames") or []
        if isinstance(groups, str):  # the table says comma-separated; the example sends a list
            groups = [g.strip() for g in groups.split(",") if g.strip()]
        now = datetime.now(UTC)
        existing = next(
            (
                r
                for r in self.rows.values()
                if r["indicatorType"] == kind and r["indicatorValue"].lower() == value.lower()
            ),
            None,
        )
        if existing is None:
            if len(self.active(now)) >= MAX_ACTIVE:
                raise ApiError(400, "InvalidInput", f"There's a limit of {MAX_ACTIVE} active indicators per tenant")
            self._next += 1
            existing = {
                "id": str(self._next),
                "indicatorValue": value,
                "indicatorType": kind,
                "application": body.get("application"),  # only set on creation
                "source": "mde-chatops",
                "sourceType": "AadApp",
                "createdBy": APP_ID,
                "createdBySource": "mde-chatops",
                "creationTimeDateTimeUtc": iso(now),
            }
            self.rows[existing["id"]] = existing
        existing.update(
            {
                "action": action,
                "title": title,
                "description": description,
                "severity": severity or "Informational",
                "expirationTime": expiry.strftime("%Y-%m-%dT%H:%M:%SZ") if expiry else None,
                "generateAlert": str(alert).lower() == "true" if alert is not None else False,
                "recommendedActions": body.get("recommendedActions"),
                "rbacGroupNames": list(groups),
                "rbacGroupIds": [],
                "lastUpdateTime": iso(now),
                "lastUpdatedBy": APP_ID,
            }
        )
        return existing

    def delete(self, indicator_id: str) -> None:
        if self.rows.pop(indicator_id, None) is None:
            raise ApiError(404, "NotFound", f"Indicator {indicator_id} was not found")
