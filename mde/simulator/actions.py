"""Machine actions and their life cycle, computed lazily from timestamps (no background tasks)."""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mde.simulator.config import SimulatorConfig
from mde.simulator.timefmt import iso

FINAL = {"Succeeded", "Failed", "TimeOut", "Cancelled"}


@dataclass
class SimAction:
    id: str
    type: str
    machine_id: str
    computer_dns_name: str
    scope: str | None
    comment: str
    created_mono: float
    created_wall: datetime
    pending_s: float
    progress_s: float
    timeout_s: float
    plan: str  # Succeeded | Failed | TimeOut (offline) | Never
    requestor: str = "mde-chatops"
    external_id: str | None = None
    cancelled_at: float | None = None
    cancel_comment: str | None = None
    #: an offline device came back (``/_sim/machines/{id}/reconnect``) at this monotonic time
    reconnected_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def _course(self) -> tuple[float, str]:
        """When the device started on the action, and how it ends.

        respond-machine-alerts.md: an isolation submitted while the device is offline is retried for up to
        three days, then not retried (TimeOut); a device that reconnects within them takes the action then.
        """
        back = self.reconnected_at
        if self.plan == "TimeOut" and back is not None and back < self.created_mono + self.timeout_s:
            return max(back, self.created_mono), "Succeeded"
        return self.created_mono, self.plan

    def status(self, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        if self.cancelled_at is not None:
            return "Cancelled"
        start, plan = self._course()
        if plan in ("TimeOut", "Never"):
            age = now - self.created_mono
            if age >= self.timeout_s:
                return "TimeOut"
            return "Pending" if plan == "TimeOut" or age < self.pending_s else "InProgress"
        age = now - start
        if age < self.pending_s:
            return "Pending"
        if age < self.pending_s + self.progress_s:
            return "InProgress"
        return plan

    def commands(self, status: str | None = None) -> list[dict[str, Any]]:
        """run-live-response.md: each command's ``commandStatus`` is Created, Completed or Failed."""
        status = status or self.status()
        command_status = {"Succeeded": "Completed", "Failed": "Failed"}.get(status, "Created")
        return [
            {
                "index": index,
                "startTime": None,
                "endTime": None,
                "commandStatus": command_status,
                "errors": ["The file was not found on the device"] if command_status == "Failed" else [],
                "command": command,
            }
            for index, command in enumerate(self.extra.get("commands") or [])
        ]

    def finished_mono(self) -> float | None:
        status = self.status()
        if status == "Cancelled":
            return self.cancelled_at
        if status == "TimeOut":
            return self.created_mono + self.timeout_s
        if status in FINAL:
            return self._course()[0] + self.pending_s + self.progress_s
        return None

    def to_api(self, *, list_shape: bool) -> dict[str, Any]:
        now = time.monotonic()
        status = self.status(now)
        done = self.finished_mono()
        last = self.created_wall + timedelta(seconds=(done if done is not None else now) - self.created_mono)
        data: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "title": None,
            "requestor": self.requestor,
            "requestorComment": self.comment,
            "status": status,
            "machineId": self.machine_id,
            "computerDnsName": self.computer_dns_name,
            "creationDateTimeUtc": iso(self.created_wall),
            "scope": self.scope,
            "externalID": self.external_id,
            "requestSource": "PublicApi",
            "cancellationRequestor": "mde-chatops" if self.cancelled_at is not None else None,
            "cancellationComment": self.cancel_comment,
            "cancellationDateTimeUtc": iso(last) if self.cancelled_at is not None else None,
            "relatedFileInfo": self.extra.get("relatedFileInfo"),
            "commands": self.commands(status),
        }
        # the documented discrepancy: list responses say lastUpdateTimeUtc, get-by-id lastUpdateDateTimeUtc
        data["lastUpdateTimeUtc" if list_shape else "lastUpdateDateTimeUtc"] = iso(last)
        return data


def new_action(
    config: SimulatorConfig,
    rng: random.Random,
    machine: dict[str, Any],
    action_type: str,
    comment: str,
    scope: str | None,
) -> SimAction:
    scale = config.time_scale
    pending, progress = config.action_pending_s / scale, config.action_in_progress_s / scale
    if rng.random() < config.slow_action_rate:
        pending, progress = pending * 10, progress * 10
    plan = "Succeeded"
    if machine.get("healthStatus") == "Inactive":
        plan = "TimeOut"
    elif machine["id"] in config.stuck_machines or rng.random() < config.never_finish_rate:
        plan = "Never"
    elif rng.random() < config.fail_action_rate:
        plan = "Failed"
    return SimAction(
        id=str(uuid.uuid4()),
        type=action_type,
        machine_id=machine["id"],
        computer_dns_name=machine["computerDnsName"],
        scope=scope,
        comment=comment,
        created_mono=time.monotonic(),
        created_wall=datetime.now(UTC),
        pending_s=pending,
        progress_s=progress,
        timeout_s=config.offline_timeout_s / scale,
        plan=plan,
    )
