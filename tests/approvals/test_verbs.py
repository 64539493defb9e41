"""The verb table: every row is complete and consistent with the grammar, MDE and the stored text."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select, text

from approvals.commands.grammar import parse
from approvals.commands.models import ActionCommand, IndicatorCommand
from approvals.commands.spec import VERBS
from approvals.db import Database
from approvals.execution.actions import submit_device_action
from approvals.requests.labels import action_label
from approvals.requests.models import DeviceState, RequestDevice, RequestRecord
from approvals.verbs import ACTIONS, POLICY_VERBS, Family, Verb
from mde.auth import StaticTokenProvider
from mde.client import MdeClient
from mde.models import ActionStatus
from mde.simulator import Simulator, SimulatorConfig
from mde.simulator.tenant import COLLECTABLE, RARE_FILE
from tests.support.records import add_request

DEVICE_VERBS = [verb for verb, spec in ACTIONS.items() if spec.submit is not None]
#: parameters without a usable default: the file a verb acts on
REQUIRED_PARAMS = {Verb.QUARANTINE: {"sha1": RARE_FILE[0]}, Verb.COLLECT_FILE: {"path": COLLECTABLE}}


@pytest.fixture
async def mde() -> AsyncIterator[tuple[Simulator, MdeClient]]:
    async with (
        Simulator(SimulatorConfig(devices=40, time_scale=60)) as sim,
        MdeClient(sim.url, StaticTokenProvider("sim-token")) as client,
    ):
        yield sim, client


def test_every_action_verb_is_one_device_call_a_bulk_tag_or_tenant_wide() -> None:
    for verb, spec in ACTIONS.items():
        per_device = spec.submit is not None and spec.action_type is not None and not spec.tenant_wide
        bulk = spec.tag_action is not None and spec.submit is None and spec.action_type is None
        tenant = spec.tenant_wide and spec.submit is None and spec.tag_action is None and spec.action_type is None
        assert [per_device, bulk, tenant].count(True) == 1, verb
        expected = Family.MACHINE_TAGS if bulk else Family.INDICATORS if tenant else Family.MACHINE_ACTIONS
        if spec.action_type == "LiveResponse":
            expected = Family.LIVE_RESPONSE
        assert spec.family is expected, verb
        assert spec.role.startswith("Ti." if tenant else "Machine."), verb


def test_every_action_verb_has_a_grammar_row_and_is_governed_by_the_policy() -> None:
    assert set(ACTIONS) <= set(VERBS)
    assert set(ACTIONS) | {Verb.SCHEDULE} == set(POLICY_VERBS)
    assert {verb for verb in Verb if verb.is_action} == set(ACTIONS)


@pytest.mark.parametrize(
    ("text_", "label"),
    [
        ('isolate ws-1 --reason "r"', "Isolate (Full)"),
        ('isolate ws-1 --reason "r" --type selective', "Isolate (Selective)"),
        ('scan ws-1 --reason "r" --scan full', "Antivirus scan (Full)"),
        ('tag "INC-1" ws-1 --reason "r"', "Add tag 'INC-1'"),
        ('untag "INC-1" ws-1 --reason "r"', "Remove tag 'INC-1'"),
        ('unisolate ws-1 --reason "r"', "Release from isolation"),
        ('collect ws-1 --reason "r"', "Collect investigation package"),
        ('block domain:evil.example.com --reason "r"', "Indicator DomainName evil.example.com → Block"),
        ('block ip:203.0.113.7 --reason "r" --action warn', "Indicator IpAddress 203.0.113.7 → Warn"),
        ('unblock domain:evil.example.com --reason "r"', "Remove indicator DomainName evil.example.com"),
        (f'quarantine sha1:{RARE_FILE[0]} on ws-1 --reason "r"', f"Stop and quarantine file {RARE_FILE[0]}"),
        ('collect-file "/tmp/x.bin" on device:ws-1 --reason "r"', "Collect file /tmp/x.bin"),
    ],
)
def test_the_stored_parameters_give_the_label_every_surface_shows(text_: str, label: str) -> None:
    command = parse(text_)
    assert isinstance(command, ActionCommand | IndicatorCommand)
    params = ACTIONS[command.verb].params_of(command)
    assert action_label(command.verb, params) == label


def test_a_request_stored_before_a_parameter_existed_is_labelled_with_its_default() -> None:
    assert action_label(Verb.ISOLATE, {}) == "Isolate (Full)"
    assert action_label(Verb.SCAN, {}) == "Antivirus scan (Quick)"


@pytest.mark.parametrize("verb", DEVICE_VERBS)
async def test_each_device_verb_creates_the_mde_action_type_its_row_names(
    verb: Verb, mde: tuple[Simulator, MdeClient]
) -> None:
    sim, client = mde
    machine_id = next(
        m["id"]
        for m in sim.tenant.machines.values()
        if m["osPlatform"].startswith("Windows1") and m["healthStatus"] == "Active"
    )
    spec = ACTIONS[verb]
    action = await submit_device_action(client, verb, machine_id, "why", REQUIRED_PARAMS.get(verb, {}))
    assert action.type == spec.action_type
    assert sim.request_log[-1].path.endswith("/" + spec.path)
    found = await client.list_machine_actions(machine_id=machine_id, type=spec.action_type)
    assert [a.id for a in found] == [action.id]


async def test_a_non_device_verb_is_refused_before_any_call(mde: tuple[Simulator, MdeClient]) -> None:
    sim, client = mde
    before = len(sim.request_log)
    with pytest.raises(ValueError, match="not a device action"):
        await submit_device_action(client, Verb.TAG, "a" * 40, "why", {"tag_value": "x"})
    assert len(sim.request_log) == before


async def test_verbs_and_device_states_are_stored_as_their_text_and_read_back_as_enums(db: Database) -> None:
    async with db.transaction() as session:
        record = await add_request(session, state="executing")
        session.add(RequestDevice(request_id=record.id, machine_id="m1", name="ws-1", state=DeviceState.TIMED_OUT))
    async with db.sessions() as session:
        raw = (await session.execute(text("SELECT r.verb, d.state FROM requests r, request_devices d"))).one()
        assert tuple(raw) == ("isolate", ActionStatus.TIMEOUT.value)
        device = await session.scalar(select(RequestDevice))
        stored = await session.scalar(select(RequestRecord))
    assert device is not None and device.state is DeviceState.TIMED_OUT
    assert stored is not None and stored.verb is Verb.ISOLATE
