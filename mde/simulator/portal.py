"""What someone does in the Defender portal, outside the bot: an isolation or a release.

MDE records it as a machine action like any other (DD:machineaction.md: ``type`` Isolate / Unisolate,
``requestor`` "the person who ran the action", ``scope`` Full or Selective), listed by ``GET /api/machineactions``
(DD:get-machineactions-collection.md); the portal's Isolate and Release buttons are the same response actions
(DD-ep:respond-machine-alerts.md). Sentinel playbooks and attack disruption appear the same way, with their
own requestor.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from mde.simulator.actions import SimAction

PORTAL_ACTIONS = {"isolate": "Isolate", "release": "Unisolate"}


def portal_action(machine: dict[str, Any], body: dict[str, Any]) -> SimAction:
    """``body``: ``{"action": "isolate"|"release", "requestor": UPN, "comment": …, "scope": Full|Selective}``.
    The action has finished (Succeeded) when it is returned."""
    kind = PORTAL_ACTIONS[str(body["action"])]
    return SimAction(
        id=str(uuid.uuid4()),
        type=kind,
        machine_id=machine["id"],
        computer_dns_name=machine["computerDnsName"],
        scope=str(body.get("scope") or "Full") if kind == "Isolate" else None,
        comment=str(body.get("comment") or "from the portal"),
        created_mono=time.monotonic(),
        created_wall=datetime.now(UTC),
        pending_s=0.0,
        progress_s=0.0,
        timeout_s=3600.0,
        plan="Succeeded",
        requestor=str(body.get("requestor") or "analyst@contoso.com"),
    )
