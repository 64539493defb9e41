"""``Resolver.resolve`` on its own: each target kind becomes the exact device set, against the simulator over HTTP.

Safety rules under test (approvals/resolution/flows.py): exact names only, never "contains"; two devices with
one name are shown, never guessed; a target that matches nothing is an error with a suggestion; several targets
are one union, each device once, with every target that matched it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from approvals.commands.models import Target, TargetKind
from approvals.errors import ResolutionError
from approvals.resolution.flows import EMPTY_TENANT, ID_CHUNK, MAX_QUERY_NAMES, Resolution, Resolver
from approvals.resolution.priority import RiskClass, priority, risk_class
from approvals.verbs import Verb
from mde.auth import StaticTokenProvider
from mde.client import MdeClient
from mde.errors import PermissionDenied
from mde.graph import RUN_HUNTING_QUERY, GraphClient
from mde.simulator import Simulator, SimulatorConfig
from tests.support.resolution import (
    HIGH_RISK,
    LINUX,
    NEIGHBOUR,
    PHONE,
    PLAIN,
    POLICY,
    SWEEP,
    TWIN_1,
    TWIN_2,
    fqdn,
    machines,
)

TAG = Target(TargetKind.TAG, SWEEP)


async def _resolve(client: MdeClient, *targets: Target, resolver: Resolver | None = None) -> Resolution:
    """A ``devices`` preview: every match, nothing excluded, so only the target rules are in play."""
    return await (resolver or Resolver(client, POLICY)).resolve(targets, verb=Verb.DEVICES)


def _ids(resolution: Resolution) -> set[str]:
    return {m.id for m in resolution.devices}


async def _error(client: MdeClient, target: Target, resolver: Resolver | None = None) -> str:
    with pytest.raises(ResolutionError) as caught:
        await _resolve(client, target, resolver=resolver)
    return caught.value.message


# -- each target kind ------------------------------------------------------------------------------------------
async def test_a_tag_target_is_every_device_carrying_the_tag(client: MdeClient, sim: Simulator) -> None:
    resolution = await _resolve(client, TAG)
    assert _ids(resolution) == {m["id"] for m in sim.tenant.machines.values() if SWEEP in m["machineTags"]}
    assert all(labels == [str(TAG)] for labels in resolution.matched_by.values())


async def test_a_group_target_is_every_device_in_the_group(client: MdeClient) -> None:
    assert _ids(await _resolve(client, Target(TargetKind.GROUP, "Linux Fleet"))) == {LINUX}


async def test_an_ip_target_is_the_device_last_seen_with_the_address(client: MdeClient) -> None:
    assert _ids(await _resolve(client, Target(TargetKind.IP, "10.9.0.1"))) == {PLAIN}
    message = await _error(client, Target(TargetKind.IP, "10.9.9.9"))
    assert message == "No device was seen with IP 10.9.9.9 in the last 15 minutes."


@pytest.mark.parametrize("typed", ["ws-a", "WS-A", "ws-a.contoso.local", "WS-A.CONTOSO.LOCAL", PLAIN, PLAIN.upper()])
async def test_a_device_is_found_by_its_exact_name_or_id_whatever_the_case(client: MdeClient, typed: str) -> None:
    assert _ids(await _resolve(client, Target(TargetKind.DEVICE, typed))) == {PLAIN}


async def test_a_name_never_matches_a_longer_name_that_starts_with_it(client: MdeClient) -> None:
    """ws-ab starts with ws-a: a "contains" or "starts with" match would isolate the wrong machine."""
    assert NEIGHBOUR not in _ids(await _resolve(client, Target(TargetKind.DEVICE, "ws-a")))
    assert _ids(await _resolve(client, Target(TargetKind.DEVICE, "ws-ab"))) == {NEIGHBOUR}


async def test_a_query_target_is_the_devices_its_rows_name_by_id_or_by_name(client: MdeClient) -> None:
    for column in ("DeviceId", "DeviceName"):
        query = f'DeviceInfo | where OSPlatform == "iOS" | project {column}'
        assert _ids(await _resolve(client, Target(TargetKind.QUERY, query))) == {PHONE}, column


async def test_a_query_without_a_device_column_says_what_to_project(client: MdeClient) -> None:
    message = await _error(client, Target(TargetKind.QUERY, "DeviceInfo | project OSPlatform"))
    assert message == "The query must return a DeviceId or DeviceName column (add | project DeviceId)."


async def test_a_user_target_is_the_devices_logged_on_to_lately_each_with_its_last_logon(
    client: MdeClient, sim: Simulator
) -> None:
    now = datetime.now(UTC)
    sim.tenant.add_logon(PLAIN, "alice", "contoso", now - timedelta(hours=1))
    sim.tenant.add_logon(HIGH_RISK, "alice", "contoso", now - timedelta(days=45))
    resolution = await _resolve(client, Target(TargetKind.USER, "alice@contoso.com"))
    assert _ids(resolution) == {PLAIN}
    assert resolution.notes[PLAIN].startswith("alice last logon ") and "(Interactive)" in resolution.notes[PLAIN]
    (stale,) = resolution.exclusions
    assert (stale.machine_id, stale.kind) == (HIGH_RISK, "stale_logon") and "older than 30 days" in stale.reason


async def test_a_file_target_is_the_devices_mde_saw_the_file_on(client: MdeClient, sim: Simulator) -> None:
    sha1 = "1" * 40
    sim.tenant.add_file(sha1, "2" * 64, [PLAIN, LINUX], ["dropper.exe"])
    assert _ids(await _resolve(client, Target(TargetKind.FILE, sha1))) == {PLAIN, LINUX}
    message = await _error(client, Target(TargetKind.FILE, "3" * 40))
    assert message.startswith(f"MDE saw the file {'3' * 40} on no device")


async def test_an_incident_target_is_the_devices_its_entities_name_each_once(client: MdeClient) -> None:
    async def incident_devices(key: str) -> tuple[list[str], list[str]]:
        assert key == "7"
        return [PLAIN], [fqdn(PLAIN), fqdn(HIGH_RISK)]  # one host named by id and by name

    resolver = Resolver(client, POLICY, incidents=incident_devices)
    resolution = await _resolve(client, Target(TargetKind.INCIDENT, "7"), resolver=resolver)
    assert sorted(m.id for m in resolution.devices) == sorted([PLAIN, HIGH_RISK])
    message = await _error(client, Target(TargetKind.INCIDENT, "7"))  # no incident store configured
    assert message.startswith("incident: targets need incident notifications")


# -- matching nothing ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("target", "message"),
    [
        (Target(TargetKind.TAG, "Swep"), "No device has the tag 'Swep'. Did you mean tag:\"Sweep\"?"),
        (
            Target(TargetKind.GROUP, "Linux Fleat"),
            "No device group is named 'Linux Fleat'. Did you mean group:\"Linux Fleet\"?",
        ),
        (
            Target(TargetKind.DEVICE, "old-1067.contoso.local"),
            "No device is named 'old-1067.contoso.local'. Did you mean device:old-1607.contoso.local?",
        ),
        (Target(TargetKind.DEVICE, "nothing-like-it"), "No device is named 'nothing-like-it'."),
        (Target(TargetKind.DEVICE, "f" * 40), f"No device has the MDE id {'f' * 40}."),
    ],
)
async def test_a_target_that_matches_nothing_is_an_error_with_the_closest_spelling(
    client: MdeClient, target: Target, message: str
) -> None:
    assert await _error(client, target) == message


async def test_on_an_empty_tenant_the_error_is_the_set_up_not_the_target() -> None:
    async with Simulator(SimulatorConfig(devices=0)) as empty, empty.connect() as client:
        for target in (Target(TargetKind.TAG, SWEEP), Target(TargetKind.DEVICE, "ws-a")):
            assert await _error(client, target) == EMPTY_TENANT


# -- ambiguity and unions ----------------------------------------------------------------------------------------
async def test_two_devices_with_one_name_are_shown_and_neither_is_taken(client: MdeClient) -> None:
    resolution = await _resolve(client, Target(TargetKind.DEVICE, "twin"))
    assert resolution.devices == []
    assert {(e.machine_id, e.kind) for e in resolution.exclusions} == {(TWIN_1, "ambiguous"), (TWIN_2, "ambiguous")}
    for exclusion in resolution.exclusions:  # each says how to pick it
        assert exclusion.reason == f"2 devices are named 'twin'; target one by device:{exclusion.machine_id}"
    assert _ids(await _resolve(client, Target(TargetKind.DEVICE, TWIN_2))) == {TWIN_2}


async def test_several_targets_are_one_union_each_device_once_with_every_target_that_matched_it(
    client: MdeClient,
) -> None:
    by_name = Target(TargetKind.DEVICE, "ws-a")
    by_group = Target(TargetKind.GROUP, "Linux Fleet")
    resolution = await _resolve(client, TAG, by_name, by_group)
    ids = [m.id for m in resolution.devices]
    assert len(ids) == len(set(ids)) and PLAIN in ids and LINUX in ids
    assert resolution.matched_by[PLAIN] == [str(TAG), str(by_name)]
    assert resolution.matched_by[LINUX] == [str(by_group)]


async def test_two_devices_a_query_names_by_one_name_are_shown_not_dropped(client: MdeClient) -> None:
    query = 'DeviceInfo | where DeviceName == "twin.contoso.local" or DeviceName == "ws-a.contoso.local"'
    resolution = await _resolve(client, Target(TargetKind.QUERY, query + " | project DeviceName"))
    assert _ids(resolution) == {PLAIN}
    assert {(e.machine_id, e.kind) for e in resolution.exclusions} == {(TWIN_1, "ambiguous"), (TWIN_2, "ambiguous")}


# -- priority -------------------------------------------------------------------------------------------------
async def test_a_device_the_incident_names_is_marked_so_and_goes_before_high_risk_ones(client: MdeClient) -> None:
    """The snapshot ranks a device as named by the incident when an ``incident:`` target matched it."""

    async def incident_devices(_key: str) -> tuple[list[str], list[str]]:
        return [], [fqdn(PLAIN)]

    resolver = Resolver(client, POLICY, incidents=incident_devices)
    resolution = await resolver.resolve([Target(TargetKind.INCIDENT, "7"), TAG], verb=Verb.ISOLATE)
    named = {m.id for m in resolution.devices if any(t.startswith("incident:") for t in resolution.matched_by[m.id])}
    assert named == {PLAIN}
    ranked = sorted(resolution.devices, key=lambda m: priority(m, named_by_incident=m.id in named))
    assert [m.id for m in ranked[:2]] == [PLAIN, HIGH_RISK]  # PLAIN is Low risk: the incident puts it first
    assert risk_class(priority(ranked[1], named_by_incident=False)) is RiskClass.HIGH


# -- what the simulator cannot be made to say: httpx.MockTransport -----------------------------------------------
def _lax_mde(*, hunting: dict[str, Any] | None = None, actions_status: int = 200) -> MdeClient:
    """An MDE that ignores ``$filter`` (answers every device to every listing), on one mock transport."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == RUN_HUNTING_QUERY:
            return httpx.Response(200, json=hunting)
        if request.url.path == "/api/machineactions":
            if actions_status != 200:
                return httpx.Response(actions_status, json={"error": {"code": "Forbidden", "message": "no role"}})
            return httpx.Response(200, json={"value": []})
        if request.url.path == "/api/machines":
            return httpx.Response(200, json={"value": machines()})
        return httpx.Response(404, json={"error": {"code": "NotFound", "message": request.url.path}})

    transport = httpx.MockTransport(answer)
    graph = GraphClient("https://graph.test", StaticTokenProvider("t"), transport=transport)
    return MdeClient("https://mde.test", StaticTokenProvider("t"), graph=graph, transport=transport)


def _names(*names: str) -> dict[str, Any]:
    """A Graph hunting answer with one DeviceName column."""
    return {"schema": [{"name": "DeviceName", "type": "String"}], "results": [{"DeviceName": n} for n in names]}


async def test_an_mde_that_answers_more_than_the_exact_name_does_not_widen_the_target() -> None:
    async with _lax_mde() as client:
        assert _ids(await _resolve(client, Target(TargetKind.DEVICE, "ws-a"))) == {PLAIN}


async def test_query_names_mde_does_not_know_are_listed_as_not_found_and_the_rest_resolve() -> None:
    async with _lax_mde(hunting=_names(fqdn(PLAIN), "ghost.contoso.local", "bad\x00name")) as client:
        resolution = await _resolve(client, Target(TargetKind.QUERY, "DeviceInfo | project DeviceName"))
    assert _ids(resolution) == {PLAIN}
    assert [(e.name, e.kind, e.reason) for e in resolution.exclusions] == [
        ("ghost.contoso.local", "not_found", "not found in MDE"),
        ("bad\x00name", "not_found", "not found (invalid characters)"),
    ]


async def test_a_query_naming_too_many_devices_asks_for_ids_instead() -> None:
    rows = _names(*(f"ws-{n:04d}" for n in range(MAX_QUERY_NAMES + 1)))
    async with _lax_mde(hunting=rows) as client:
        message = await _error(client, Target(TargetKind.QUERY, "DeviceInfo | project DeviceName"))
    assert message.startswith(f"The query returned {MAX_QUERY_NAMES + 1} device names; project DeviceId")


async def test_an_isolation_whose_device_state_mde_will_not_tell_is_not_resolved() -> None:
    """Without MDE's actions nobody knows what is isolated already: no snapshot is better than a wrong one."""
    async with _lax_mde(actions_status=403) as client:
        with pytest.raises(PermissionDenied):
            await Resolver(client, POLICY).resolve([Target(TargetKind.DEVICE, "ws-a")], verb=Verb.ISOLATE)


async def test_a_query_naming_many_devices_resolves_every_one_in_chunks_of_ids() -> None:
    """MDE's $filter has a length limit: ids go ``ID_CHUNK`` at a time, and none may fall between two chunks."""
    async with Simulator(SimulatorConfig(devices=60)) as tenant, tenant.connect() as client:
        resolution = await _resolve(client, Target(TargetKind.QUERY, "DeviceInfo | project DeviceId"))
        filters = [e.query.get("$filter", "") for e in tenant.request_log if e.path == "/api/machines"]
    assert _ids(resolution) == set(tenant.tenant.machines)
    assert len([f for f in filters if f.startswith("id eq ")]) == -(-len(tenant.tenant.machines) // ID_CHUNK)
