"""Active alerts in riskiest first: one listing per request, and a request that never waits on it."""

from __future__ import annotations

from sqlalchemy import select

from approvals.identity import Origin
from approvals.requests.models import RequestDevice
from approvals.resolution.alerts import NO_PERMISSION, UNREADABLE
from approvals.resolution.priority import RiskClass, risk_class
from bot.console.repl import console_actor
from tests.support.stack import Stack

ALICE = console_actor("alice")
HERE = Origin(surface="console", channel_id="console")
SWEEP = 'scan tag:"Sweep" --reason "INC-9 sweep"'


def _tag_everything(stack: Stack) -> None:
    for machine in stack.sim.tenant.machines.values():
        machine["machineTags"].append("Sweep")


def _alert_calls(stack: Stack) -> list[int]:
    return [e.status for e in stack.sim.request_log if e.family == "alerts_read"]


async def _classes(stack: Stack, request_id: int) -> dict[str, RiskClass]:
    async with stack.db.sessions() as session:
        rows = await session.execute(
            select(RequestDevice.machine_id, RequestDevice.priority).where(RequestDevice.request_id == request_id)
        )
        return {machine_id: risk_class(value) for machine_id, value in rows}


async def test_devices_with_unresolved_alerts_form_the_first_class_whatever_their_risk_score() -> None:
    async with Stack.start(devices=400, start_engine=False) as stack:
        _tag_everything(stack)
        reply = await stack.chatops.handle(ALICE, HERE, SWEEP)
        assert reply.request is not None, reply.text
        classes = await _classes(stack, reply.request.id)
        alerted = {a["machineId"] for a in stack.sim.tenant.alerts if a["status"] != "Resolved"} & classes.keys()
        resolved_only = {a["machineId"] for a in stack.sim.tenant.alerts if a["status"] == "Resolved"} - alerted
        assert {m for m, c in classes.items() if c is RiskClass.INCIDENT} == alerted
        assert any(stack.sim.tenant.machines[m]["riskScore"] == "Low" for m in alerted)
        assert all(classes[m] is not RiskClass.INCIDENT for m in resolved_only & classes.keys())
        assert _alert_calls(stack) == [200]  # one listing for the request, not one call per device
        assert not any("alerts" in w for w in reply.request.warnings)


async def test_a_small_request_does_not_read_alerts() -> None:
    """Up to 100 devices all go out in the first minute: there is nothing to order, so nothing to ask."""
    async with Stack.start(devices=60, start_engine=False) as stack:
        _tag_everything(stack)
        reply = await stack.chatops.handle(ALICE, HERE, SWEEP)
        assert reply.request is not None, reply.text
        assert _alert_calls(stack) == []


async def test_without_alert_read_all_the_request_is_ordered_by_risk_score_and_the_card_says_so() -> None:
    async with Stack.start(devices=400, start_engine=False) as stack:
        _tag_everything(stack)
        stack.sim.config.roles = frozenset({"Machine.Read.All"})  # reads devices, not alerts
        reply = await stack.chatops.handle(ALICE, HERE, SWEEP)
        assert reply.request is not None, reply.text
        assert _alert_calls(stack) == [403]
        assert NO_PERMISSION in reply.request.warnings
        classes = await _classes(stack, reply.request.id)
        assert RiskClass.INCIDENT not in classes.values()
        high = {m for m in classes if stack.sim.tenant.machines[m]["riskScore"] == "High"}
        assert high and all(classes[m] is RiskClass.HIGH for m in high)
        assert reply.request.order_note and "High risk" in reply.request.order_note


async def test_a_throttled_alerts_listing_is_not_waited_out_the_request_goes_on() -> None:
    async with Stack.start(devices=400, start_engine=False) as stack:
        _tag_everything(stack)
        stack.sim.config.burst_429, stack.sim.config.burst_429_match = 3, "/alerts"
        reply = await stack.chatops.handle(ALICE, HERE, SWEEP)
        assert reply.request is not None, reply.text
        assert _alert_calls(stack) == [429]  # asked once: a Retry-After is not worth the card's time
        assert UNREADABLE.format(why="MDE is throttling the alerts API") in reply.request.warnings
        assert RiskClass.INCIDENT not in (await _classes(stack, reply.request.id)).values()
