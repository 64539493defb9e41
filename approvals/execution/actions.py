"""How the worker calls MDE for one device, and how it recognises its own actions after a crash."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from approvals.verbs import ACTIONS, Verb
from mde.client import MdeClient
from mde.models import MachineAction

#: MDE's clock and ours may differ: a listing of actions "created after" a time starts this much earlier
CLOCK_SKEW = timedelta(minutes=5)
#: finds the request number in an action's comment
MARKER = re.compile(r"\[mde-chatops #(\d+)\]")


def marker(request_id: int) -> str:
    """Put in every action's comment so a resumed worker recognises this request's own actions."""
    return f"[mde-chatops #{request_id}]"


def comment_for(request_id: int, reason: str | None, requester: str) -> str:
    return f"{reason or 'no reason given'} (requested by {requester}) {marker(request_id)}"


async def submit_device_action(
    client: MdeClient, verb: Verb, machine_id: str, comment: str, params: Mapping[str, Any]
) -> MachineAction:
    """The verb's own MDE call (``ACTIONS[verb].submit``), with its parameters' defaults filled in."""
    spec = ACTIONS.get(verb)
    if spec is None or spec.submit is None:
        raise ValueError(f"{verb} is not a device action")
    return await spec.submit(client, machine_id, comment, spec.with_defaults(params))
