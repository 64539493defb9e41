"""Reading Sentinel and Graph incident shapes, and matching rules against them."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from approvals.incidents.payloads import IncidentData, PayloadError, parse_incident
from approvals.incidents.rules import RulesError, RuleSet, load_rules
from tests.support.incidents import load, sentinel_incident

DEVICE_ID = "a" * 40


def test_a_sentinel_incident_is_read_with_its_hosts() -> None:
    data = parse_incident(sentinel_incident(hosts=[("ws-0001.contoso.local", DEVICE_ID), ("srv-0002", None)]))
    assert (data.source, data.external_id, data.severity, data.status) == ("sentinel", "1042", "high", "New")
    assert data.product == "Microsoft Defender Advanced Threat Protection"
    assert data.tags == ("ransomware",) and data.entity_kinds == {"host", "account"}
    assert [(d.mde_device_id, d.dns_name) for d in data.devices] == [
        (DEVICE_ID, "ws-0001.contoso.local"),
        (None, "srv-0002"),
    ]


def test_the_bare_sentinel_object_is_accepted_too() -> None:
    assert parse_incident(load("sentinel_incident")["object"]).external_id == "1042"


def test_a_sentinel_alert_uses_mdatp_device_id() -> None:
    body = {
        "SystemAlertId": "0c1d",
        "AlertDisplayName": "Ransomware detected",
        "Severity": "High",
        "Entities": [{"$id": "2", "Type": "host", "HostName": "ws-0009", "MdatpDeviceId": DEVICE_ID.upper()}],
    }
    data = parse_incident(body)
    assert data.external_id == "alert:0c1d" and data.devices[0].mde_device_id == DEVICE_ID


def test_a_sentinel_alert_whose_entities_string_is_not_a_list_gets_a_clear_message() -> None:
    with pytest.raises(PayloadError, match="not a JSON list"):
        parse_incident({"SystemAlertId": "x", "Entities": '{"Type": "host"'})


def test_a_graph_incident_reads_device_evidence() -> None:
    data = parse_incident(load("graph_incident"))
    assert (data.source, data.external_id, data.severity, data.status) == ("graph", "2972395", "high", "active")
    assert data.product == "microsoftDefenderForEndpoint" and "host" in data.entity_kinds
    assert [d.dns_name for d in data.devices] == ["ws-0001.contoso.local"]


def test_a_graph_alert_is_folded_into_its_incident() -> None:
    alert = load("graph_incident")["alerts"][0]
    assert parse_incident(alert).external_id == "2972395"


def test_a_closed_status_closes() -> None:
    assert parse_incident(sentinel_incident(status="Closed")).closed
    graph = load("graph_incident") | {"status": "resolved"}
    assert parse_incident(graph).closed


@pytest.mark.parametrize(
    "body, reason",
    [
        ([], "JSON object"),
        ({"hello": "world"}, "not an incident we know"),
        ({"object": {"name": "x"}}, "object.properties"),
        ({"object": {"properties": {"incidentNumber": 1, "relatedEntities": "nope"}}}, "must be a list"),
        ({"displayName": "x"}, "needs id"),
    ],
)
def test_unreadable_bodies_say_why(body: Any, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        parse_incident(body)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=30,
)
keys = st.sampled_from(
    [
        "object",
        "properties",
        "SystemAlertId",
        "Entities",
        "alerts",
        "evidence",
        "incidentId",
        "displayName",
        "relatedEntities",
        "title",
        "id",
        "incidentNumber",
        "@odata.type",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(keys, json_values, max_size=6))
def test_the_parser_never_fails_with_anything_but_a_payload_error(body: dict[str, Any]) -> None:
    try:
        data = parse_incident(body)
    except PayloadError:
        return
    assert isinstance(data, IncidentData) and data.external_id


# -- rules --------------------------------------------------------------------------------------------------
RULES = RuleSet.model_validate(
    {
        "rules": [
            {
                "name": "ransomware-high",
                "when": {"severity": ["high", "critical"], "title_contains": ["ransomware"]},
                "post": [{"surface": "console", "channel": "soc"}],
                "propose": {"action": "isolate"},
            },
            {
                "name": "mde-hosts",
                "when": {"product": ["microsoftDefenderForEndpoint"], "entity_kinds": ["host"]},
                "post": [{"surface": "slack", "channel": "C1"}],
            },
            {
                "name": "tagged",
                "when": {"tags": ["CustomerX"], "title_matches": "^multi-stage", "source": ["graph"]},
                "post": [{"surface": "teams", "channel": "19:x@thread.tacv2"}],
            },
        ]
    }
)


@pytest.mark.parametrize(
    "incident, expected",
    [
        (sentinel_incident(), ["ransomware-high"]),
        (sentinel_incident(severity="Medium"), []),
        (sentinel_incident(title="Suspicious PowerShell"), []),
        (sentinel_incident(title="RANSOMWARE note dropped", severity="High"), ["ransomware-high"]),
        (load("graph_incident"), ["mde-hosts", "tagged"]),
        (load("graph_incident") | {"customTags": []}, ["mde-hosts"]),
    ],
)
def test_rules_match_on_every_condition(incident: dict[str, Any], expected: list[str]) -> None:
    assert [r.name for r in RULES.matching(parse_incident(incident))] == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("rules: [{name: x, post: [{surface: slack, channel: C1}], when: {severity: [urgent]}}]", "unknown severity"),
        ("rules: [{name: x, post: [{surface: slack, channel: C1}], when: {title_matches: '('}}]", "regular expression"),
        ("rules: [{name: x, post: []}]", "post"),
        ("rules: [{name: x, post: [{surface: irc, channel: C1}]}]", "surface"),
        ("rules: [{name: x, post: [{surface: slack, channel: C1}], propose: {action: tag}}]", "propose.tag"),
        ("rules: [{name: x, post: [{surface: slack, channel: C1}], colour: red}]", "colour"),
        (
            "rules: [{name: x, post: [{surface: slack, channel: C1}]},"
            " {name: x, post: [{surface: slack, channel: C1}]}]",
            "unique",
        ),
        ("rules: [", "not valid YAML"),
    ],
)
def test_a_bad_rules_file_names_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(RulesError, match=message):
        load_rules(path)


def test_the_example_rules_file_is_valid() -> None:
    rules = load_rules(Path(__file__).parents[3] / "examples" / "rules.yaml")
    assert rules.rules and json.dumps([r.model_dump() for r in rules.rules])


inner_keys = st.sampled_from(
    [
        "incidentNumber",
        "title",
        "severity",
        "status",
        "labels",
        "additionalData",
        "relatedEntities",
        "kind",
        "properties",
        "hostName",
        "dnsDomain",
        "MdatpDeviceId",
        "evidence",
        "mdeDeviceId",
        "deviceDnsName",
        "@odata.type",
        "alertProductNames",
    ]
)
nested = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(inner_keys, children, max_size=5),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None)
@given(nested, st.sampled_from(["sentinel", "graph", "alert"]))
def test_deep_fields_of_the_known_shapes_never_crash_the_parser(inner: Any, shape: str) -> None:
    body: dict[str, Any] = {
        "sentinel": {"object": {"properties": inner}},
        "graph": {"id": "1", "alerts": [inner, {"evidence": [inner]}]},
        "alert": {"SystemAlertId": "1", "Entities": [inner]},
    }[shape]
    with contextlib.suppress(PayloadError):
        parse_incident(body)
