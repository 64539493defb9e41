"""The MDE call an approved block/unblock request makes (one durable job, run by the worker).

Both calls are safe to repeat after a crash: submitting updates the indicator with the same type and value
in place (post-ti-indicator.md), and removing one that is gone already answers 404, taken as done.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from approvals.execution.actions import comment_for, marker
from approvals.requests.models import RequestRecord
from mde.client import MdeClient
from mde.errors import NotFound
from mde.models import IndicatorAction, IndicatorSeverity, IndicatorType

TITLE_MAX = 200


async def run(client: MdeClient, record: RequestRecord) -> str:
    """Submit or remove the request's indicator; returns the sentence its thread gets."""
    params = record.params or {}
    kind, value = IndicatorType(params["indicator_type"]), str(params["value"])
    if record.verb == "unblock":
        removed = []
        for indicator_id in params.get("indicator_ids") or []:
            with contextlib.suppress(NotFound):  # removed already (by a previous attempt, or in the portal)
                await client.delete_indicator(str(indicator_id))
            removed.append(str(indicator_id))
        return f"Indicator {', '.join(removed)} removed from MDE: {kind.value} {value} is no longer blocked."
    action = IndicatorAction(params.get("action", "Block"))
    expires = datetime.fromisoformat(params["expires_at"])
    title = f"{record.reason or 'blocked from chat'} {marker(record.id)}"
    indicator = await client.submit_indicator(
        value=value,
        indicator_type=kind,
        action=action,
        title=title[-TITLE_MAX:],
        description=comment_for(record.id, record.reason, record.requester_label),
        expiration_time=expires,
        severity=IndicatorSeverity.HIGH if action is IndicatorAction.BLOCK else IndicatorSeverity.MEDIUM,
        generate_alert=True,
        rbac_group_names=list(params.get("groups") or []),
        application=str(params.get("application") or "mde-chatops"),
    )
    groups = ", ".join(indicator.rbac_group_names) or "every device"
    return (
        f"Indicator {indicator.id} is in MDE: {indicator.indicator_type} {indicator.indicator_value} → "
        f"{indicator.action} on {groups}, expires {expires:%Y-%m-%d %H:%M} UTC."
    )
