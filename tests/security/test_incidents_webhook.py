"""``POST /api/incidents`` with bodies shaped as Microsoft documents them: the Sentinel incident trigger
(``workspaceId``, ``object.id`` an ARM id under ``/workspaces/<name>``, ``properties.incidentNumber``),
Microsoft Graph security ``incident`` / ``alert`` (``incidentId``, ``status`` with ``redirected`` and
``redirectIncidentId``) and a Log Analytics ``SecurityAlert`` row (``Entities`` a JSON string,
``AlertSeverity``). Each case asserts the HTTP answer and what was (not) created.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from approvals.incidents.models import IncidentEvent, IncidentRecord, IncidentThread, WebhookReject
from tests.support.actors import BOB
from tests.support.footprint import NOTHING, footprint
from tests.support.incidents import load, sentinel_incident
from tests.support.incidents.webhook import Rig, eligible_hosts, incident_rig

OTHER_WORKSPACE = (
    "/subscriptions/22222222-0000-0000-0000-000000000000/resourceGroups/emea"
    "/providers/Microsoft.OperationalInsights/workspaces/emea-law"
)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    """The webhook on the stack, its rules and a console."""
    async with incident_rig() as rig_:
        yield rig_


def in_workspace(body: dict[str, Any], workspace: str, workspace_id: str) -> dict[str, Any]:
    body = copy.deepcopy(body)
    guid = body["object"]["name"]
    body["object"]["id"] = f"{workspace}/providers/Microsoft.SecurityInsights/Incidents/{guid}"
    body["workspaceId"] = workspace_id
    body["workspaceInfo"]["WorkspaceName"] = workspace.rsplit("/", 1)[-1]
    return body


def graph_incident(host: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body = load("graph_incident")
    body["displayName"] = "Ransomware on one endpoint"
    evidence = body["alerts"][0]["evidence"][0]
    evidence["deviceDnsName"], evidence["mdeDeviceId"] = host["computerDnsName"], host["id"]
    body.update(changes)
    return body


async def isolated_for_graph_incident(rig: Rig) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Graph incident whose rule isolated one device (approved by Bob): (the incident body, the host)."""
    (host,) = eligible_hosts(rig.stack, 1)
    body = graph_incident(host)
    answer = (await rig.send(body)).json()
    (request_id,) = answer["requests"]
    assert not (await rig.stack.chatops.decide(BOB, request_id, approve=True)).error
    assert await rig.stack.wait_for_state(request_id, {"succeeded"}) == "succeeded"
    return body, host


async def incident(rig: Rig, external_id: str) -> list[IncidentRecord]:
    async with rig.stack.db.sessions() as session:
        return list(await session.scalars(select(IncidentRecord).where(IncidentRecord.external_id == external_id)))


# -- Sentinel incident numbers are per workspace ------------------------------------------------------------
async def test_the_same_number_in_two_workspaces_is_two_incidents(rig: Rig) -> None:
    first_host, second_host = eligible_hosts(rig.stack, 2)
    first = sentinel_incident(4711, title="Ransomware in soc", hosts=[(first_host["computerDnsName"], None)])
    second = in_workspace(
        sentinel_incident(4711, title="Ransomware in emea", hosts=[(second_host["computerDnsName"], None)]),
        OTHER_WORKSPACE,
        "33333333-3333-3333-3333-333333333333",
    )
    first_answer = await rig.send(first)
    answer = await rig.send(second)
    assert first_answer.status_code == answer.status_code == 200 and answer.json()["created"]
    rows = sorted(await incident(rig, "4711"), key=lambda r: r.id)
    assert [r.title for r in rows] == ["Ransomware in soc", "Ransomware in emea"]
    assert [[d["dns_name"] for d in r.devices] for r in rows] == [
        [first_host["computerDnsName"]],
        [second_host["computerDnsName"]],
    ]
    views = [await rig.stack.chatops.view(a.json()["requests"][0]) for a in (first_answer, answer)]
    assert [[d.machine_id for d in v.devices] for v in views] == [[first_host["id"]], [second_host["id"]]]
    assert "emea-law" in views[1].reason
    ambiguous = await rig.stack.chatops.handle(BOB, _console(), "devices incident:4711")
    assert ambiguous.error and "more than one workspace" in ambiguous.text and "emea-law" in ambiguous.text


# -- a Graph alert is evidence, not the incident's state ------------------------------------------------------
async def test_a_resolved_alert_does_not_close_its_incident_nor_propose_a_release(rig: Rig) -> None:
    body, _host = await isolated_for_graph_incident(rig)
    before = await footprint(rig.stack)
    alert = copy.deepcopy(body["alerts"][0]) | {"status": "resolved", "title": "One alert", "severity": "low"}
    answer = await rig.send(alert)
    assert answer.status_code == 200 and answer.json()["requests"] == []
    (row,) = await incident(rig, body["id"])
    assert (row.status, row.closed, row.title, row.severity) == ("active", False, body["displayName"], "high")
    assert await footprint(rig.stack) == before


async def test_an_alert_adds_its_evidence_to_the_incident(rig: Rig) -> None:
    body, first = await isolated_for_graph_incident(rig)
    (other,) = [h for h in eligible_hosts(rig.stack, 2) if h["id"] != first["id"]]
    alert = copy.deepcopy(body["alerts"][0]) | {"id": "da2", "status": "new"}
    alert["evidence"][0].update(deviceDnsName=other["computerDnsName"], mdeDeviceId=other["id"])
    assert (await rig.send(alert)).status_code == 200
    (row,) = await incident(rig, body["id"])
    assert other["id"] in {d["mde_device_id"] for d in row.devices}


# -- redirected: merged, not resolved -------------------------------------------------------------------------
async def test_a_redirected_incident_follows_the_survivor_and_proposes_no_release(rig: Rig) -> None:
    body, host = await isolated_for_graph_incident(rig)
    before = await footprint(rig.stack)
    merged = body | {"status": "redirected", "redirectIncidentId": "2972400"}
    answer = await rig.send(merged)
    assert answer.status_code == 200 and answer.json()["requests"] == []
    assert await footprint(rig.stack) == before
    (old,) = await incident(rig, body["id"])
    (survivor,) = await incident(rig, "2972400")
    assert not old.closed and not survivor.closed
    assert host["id"] in {d["mde_device_id"] for d in survivor.devices}
    async with rig.stack.db.sessions() as session:
        threads = list(await session.scalars(select(IncidentThread).order_by(IncidentThread.id)))
    by_incident = {t.incident_id: (t.surface, t.channel_id, t.message_id) for t in threads}
    assert by_incident[survivor.id] == by_incident[old.id]  # the same war-room thread continues


async def test_a_redirected_incident_sent_again_says_it_was_merged_once(rig: Rig) -> None:
    body, _ = await isolated_for_graph_incident(rig)
    merged = body | {"status": "redirected", "redirectIncidentId": "2972400"}
    again = merged | {"lastUpdateDateTime": "2099-01-01T00:00:00Z"}
    assert [(await rig.send(b)).status_code for b in (merged, again)] == [200, 200]
    (old,) = await incident(rig, body["id"])
    async with rig.stack.db.sessions() as session:
        notes = list(
            await session.scalars(
                select(IncidentEvent).where(IncidentEvent.incident_id == old.id, IncidentEvent.kind == "note")
            )
        )
    assert [n.payload["text"] for n in notes] == ["Merged into incident 2972400; it continues here."]


async def test_a_forged_merge_stores_nothing_and_a_signed_one_makes_the_survivor_release_its_devices(
    rig: Rig,
) -> None:
    body, host = await isolated_for_graph_incident(rig)
    merged = body | {"status": "redirected", "redirectIncidentId": "2972400"}
    forged_alert = copy.deepcopy(body["alerts"][0]) | {"status": "resolved"}
    before = await footprint(rig.stack)
    assert [(await rig.send(b, auth="")).status_code for b in (merged, forged_alert)] == [401, 401]
    (old,) = await incident(rig, body["id"])
    assert old.merged_into is None and [a["status"] for a in old.alerts] == ["new"]
    assert await incident(rig, "2972400") == [] and await footprint(rig.stack) == before

    assert (await rig.send(merged)).status_code == 200
    closed = graph_incident(host, id="2972400", status="resolved", alerts=[])
    answer = await rig.send(closed)

    assert answer.status_code == 200
    (release_id,) = answer.json()["requests"]
    view = await rig.stack.chatops.view(release_id)
    assert (view.action, [d.machine_id for d in view.devices]) == ("unisolate", [host["id"]])


# -- Log Analytics SecurityAlert rows -------------------------------------------------------------------------
async def test_a_log_analytics_security_alert_row_is_read_with_its_severity(rig: Rig) -> None:
    (host,) = eligible_hosts(rig.stack, 1)
    short, _, domain = host["computerDnsName"].partition(".")
    row = {
        "TenantId": "11111111-1111-1111-1111-111111111111",
        "TimeGenerated": "2026-11-26T10:06:00Z",
        "DisplayName": "Ransomware behaviour detected",
        "AlertName": "Ransomware behaviour detected",
        "AlertSeverity": "High",
        "ProviderName": "MDATP",
        "ProductName": "Microsoft Defender Advanced Threat Protection",
        "SystemAlertId": "0f3a7c1e-5b2d-4e8f-9a6c-1d2e3f4a5b6c",
        "Status": "New",
        "Entities": json.dumps(
            [{"$id": "2", "HostName": short, "DnsDomain": domain, "OSFamily": "Windows", "Type": "host"}]
        ),
        "ExtendedProperties": json.dumps({"Category": "Ransomware"}),
    }
    answer = await rig.send(row)
    assert answer.status_code == 200, answer.text
    assert answer.json()["rules"] == ["ransomware-high"] and len(answer.json()["requests"]) == 1
    view = await rig.stack.chatops.view(answer.json()["requests"][0])
    assert [d.machine_id for d in view.devices] == [host["id"]]


# -- crashes --------------------------------------------------------------------------------------------------
async def test_a_control_character_in_a_host_name_is_not_found_and_the_rest_proceeds(rig: Rig) -> None:
    (host,) = eligible_hosts(rig.stack, 1)
    body = sentinel_incident(hosts=[("rt-15\u0007", None), (host["computerDnsName"], None)])
    answer = await rig.send(body)
    assert answer.status_code == 200, answer.text
    (request_id,) = answer.json()["requests"]
    view = await rig.stack.chatops.view(request_id)
    assert [d.machine_id for d in view.devices] == [host["id"]]
    assert [(e.name, e.reason) for e in view.exclusions] == [("rt-15\u0007", "not found (invalid characters)")]


@pytest.mark.parametrize("depth", [100, 960])
async def test_a_deeply_nested_field_is_refused_and_kept(rig: Rig, depth: int) -> None:
    raw = json.dumps(sentinel_incident())[:-1] + ', "extra": ' + "[" * depth + "]" * depth + "}"
    answer = await rig.send(raw.encode())
    assert answer.status_code == 400 and "nested too deeply" in answer.json()["error"]
    assert await rig.count(WebhookReject) == 1 and await rig.count(IncidentRecord) == 0
    assert await footprint(rig.stack) == NOTHING


def _console() -> Any:
    from approvals.identity import Origin

    return Origin(surface="console", channel_id="soc")
