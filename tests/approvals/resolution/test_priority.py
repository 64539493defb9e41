"""Riskiest first: the order rule, the ETA per class on the card, and the order MDE really sees."""

from __future__ import annotations

import pytest

from approvals.identity import Origin
from approvals.resolution.priority import RiskClass, minutes_to_submit, order_sentence, priority, risk_class
from bot.console.repl import console_actor
from mde.models import Machine
from tests.support.stack import FAST_WORKER, Stack

ALICE, BOB, CAROL = console_actor("alice"), console_actor("bob"), console_actor("carol")
HERE = Origin(surface="console", channel_id="console")


def _machine(risk: str | None, exposure: str | None = None) -> Machine:
    return Machine.from_api(
        {"id": "a" * 40, "computerDnsName": "ws-1", "riskScore": risk, "exposureLevel": exposure, "machineTags": []}
    )


def test_incident_hosts_go_first_then_mde_risk_score_then_exposure_within_a_class() -> None:
    ranked = [
        priority(_machine("Low", "None"), named_by_incident=True),
        priority(_machine("Low", None), named_by_incident=False, alerted=True),
        priority(_machine("High", "Low"), named_by_incident=False),
        priority(_machine("High", None), named_by_incident=False),
        priority(_machine("Medium", "High"), named_by_incident=False),
        priority(_machine("Informational", "High"), named_by_incident=False),
        priority(_machine(None, None), named_by_incident=False),
    ]
    assert ranked == sorted(ranked) and len(set(ranked)) == len(ranked)
    assert [risk_class(p) for p in ranked] == [
        RiskClass.INCIDENT,
        RiskClass.INCIDENT,
        RiskClass.HIGH,
        RiskClass.HIGH,
        RiskClass.MEDIUM,
        RiskClass.OTHER,
        RiskClass.OTHER,
    ]


@pytest.mark.parametrize(
    ("count", "minutes"),
    [(0, 0), (1, 0), (100, 0), (101, 1), (1500, 14), (1501, 60), (3000, 74), (3001, 120)],
)
def test_minutes_to_submit_follow_100_a_minute_and_1500_an_hour(count: int, minutes: int) -> None:
    assert minutes_to_submit(count) == minutes


def test_the_card_states_the_rule_and_when_each_class_is_all_submitted() -> None:
    priorities = [0] * 5 + [10] * 95 + [20] * 1500 + [30] * 1400
    sentence = order_sentence(priorities)
    assert sentence == (
        "Riskiest first: 5 alerted or named by the incident, 95 High risk, 1,500 Medium risk, 1,400 the rest. "
        "Submitted: alerted or named by the incident in the first minute; High risk in the first minute; "
        "Medium risk within about 1 h; "
        "all within about 1 h 14 min."
    )
    assert order_sentence([30] * 100) is None  # all of it goes in the first minute: nothing worth saying


async def test_alerted_devices_then_high_risk_ones_are_submitted_before_any_other() -> None:
    async with Stack.start(devices=400) as stack:
        for machine in stack.sim.tenant.machines.values():
            machine["machineTags"].append("Sweep")
        reply = await stack.chatops.handle(ALICE, HERE, 'scan tag:"Sweep" --reason "INC-9 sweep"')
        assert reply.request is not None, reply.text
        scanned = {d.machine_id for d in reply.request.devices}  # a scan leaves Windows Server out (capabilities)
        alerted = {a["machineId"] for a in stack.sim.tenant.alerts if a["status"] != "Resolved"} & scanned
        high = {m["id"] for m in stack.sim.tenant.machines.values() if m["riskScore"] == "High"} & scanned - alerted
        assert alerted and high and len(alerted | high) < 100
        assert any(m["riskScore"] != "High" for m in (stack.sim.tenant.machines[i] for i in alerted))
        assert reply.request.order_note and "alerted or named by the incident" in reply.request.order_note
        assert reply.request.order_note and "High risk" in reply.request.order_note
        assert [e.path for e in stack.sim.request_log if e.family == "alerts_read"] == ["/api/alerts"]  # one listing
        request_id = reply.request.id
        assert not (await stack.chatops.decide(BOB, request_id, approve=True)).error
        assert not (await stack.chatops.decide(CAROL, request_id, approve=True)).error
        await stack.wait_for_state(request_id, {"succeeded", "partially_failed"})
        # jobs are claimed in priority order and a batch's calls run concurrently: MDE sees the classes in order,
        # give or take the worker's concurrency where two classes meet
        slack = FAST_WORKER.concurrency
        place = {action.machine_id: i for i, action in enumerate(stack.sim.tenant.actions.values())}
        assert max(place[m] for m in alerted) < len(alerted) + slack
        assert min(place[m] for m in high) >= len(alerted) - slack
        assert max(place[m] for m in high) < len(alerted | high) + slack
