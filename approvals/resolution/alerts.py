"""Which of a request's devices have active alerts: the first class of riskiest first, with the incident's hosts.

A device MDE is raising alerts on now is where the attack is, so it goes out before MDE's ``riskScore`` says
anything. One ``GET /api/alerts?$filter=status ne 'Resolved'`` per request answers for every device
(learn.microsoft.com/defender-endpoint/api/get-alerts; ``machineId`` on each alert), never one
``/api/machines/{id}/alerts`` per device: those would spend the alerts family's 100 calls a minute on a
ranking. Microsoft's own page points to the Graph security API (``/security/alerts_v2``) for alerts across
all Defender products, but retires nothing here (the retired one is Graph's legacy ``/security/alerts``); the
MDE listing carries the device id itself, uses the token and roles the bot already has (plus
``Alert.Read.All``), and so is what this asks.

Ordering is a courtesy, never a gate: when the alerts cannot be read (no ``Alert.Read.All``, throttled,
MDE down) the request goes on, ordered by risk score alone, and the card says so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from dataclasses import dataclass

from approvals.resolution.priority import ORDER_WORTH_SAYING
from approvals.verbs import ACTIONS, Family, Verb
from mde.client import MdeClient
from mde.errors import MdeError, PermissionDenied, RateLimited

log = logging.getLogger(__name__)

NO_PERMISSION = (
    "Active alerts were not read (the app lacks Alert.Read.All): riskiest first orders by MDE risk score only."
)
UNREADABLE = "Active alerts could not be read ({why}): riskiest first orders by MDE risk score only."
#: the card waits this long at most for the alerts (retries included), then goes on without them
ALERTS_WAIT_S = 10.0


@dataclass(frozen=True, slots=True)
class AlertedDevices:
    """The devices with an unresolved alert, or why nobody knows (a line for the card)."""

    machine_ids: frozenset[str] = frozenset()
    caveat: str | None = None


def worth_ranking(verb: Verb, devices: int) -> bool:
    """One action per device, and more of them than go out in the first minute anyway."""
    spec = ACTIONS.get(verb)
    return spec is not None and spec.family is Family.MACHINE_ACTIONS and devices > ORDER_WORTH_SAYING


async def alerted_devices(
    client: MdeClient, machine_ids: Collection[str], *, wait_s: float = ALERTS_WAIT_S
) -> AlertedDevices:
    """Which of ``machine_ids`` MDE has unresolved alerts on, from one listing of the tenant's alerts; a 429
    is not waited out (the card would wait on it) and the whole look takes ``wait_s`` at most."""
    try:
        async with asyncio.timeout(wait_s):
            alerts = await client.list_alerts(retry_throttled=False)
    except PermissionDenied:
        return AlertedDevices(caveat=NO_PERMISSION)
    except (MdeError, TimeoutError) as exc:
        log.warning("alerts listing failed (%s); ordering by risk score only", type(exc).__name__)
        return AlertedDevices(caveat=UNREADABLE.format(why=_why(exc)))
    wanted = set(machine_ids)
    return AlertedDevices(frozenset(a.machine_id for a in alerts if a.is_active and a.machine_id in wanted))


def _why(exc: Exception) -> str:
    if isinstance(exc, RateLimited):
        return "MDE is throttling the alerts API"
    if isinstance(exc, TimeoutError):
        return f"no answer within {ALERTS_WAIT_S:.0f} s"
    return f"MDE answered {exc}"
