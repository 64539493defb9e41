"""POST /api/incidents over HTTP: authentication, bad bodies, duplicates and updates, rules, the war-room
thread on the console, and the close-to-release flow, against the MDE simulator."""

from __future__ import annotations

import io
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from approvals.incidents.models import IncidentEvent, IncidentRecord, WebhookReject
from approvals.incidents.payloads import parse_incident
from approvals.incidents.rules import RuleSet
from approvals.requests.models import RequestRecord
from bot.console.repl import console_actor
from bot.console.surface import ConsoleSurface
from bot.server import build_app, start_site
from bot.webhooks import SIGNATURE_HEADER, IncidentWebhook, sign
from tests.support.actors import BOB
from tests.support.incidents import sentinel_incident
from tests.support.incidents.webhook import SECRET, TOKEN, Rig, eligible_hosts, incident_rig
from tests.support.stack import Stack


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with incident_rig() as rig_:
        yield rig_


# -- authentication and bad input ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "auth",
    [
        "",
        json.dumps({SIGNATURE_HEADER: "t=1,v1=00"}),
        json.dumps({SIGNATURE_HEADER: "garbage"}),
        json.dumps({"Authorization": "Bearer wrong-token"}),
        json.dumps({"Authorization": "Basic aW5jaWRlbnQ="}),
    ],
    ids=["none", "bad-signature", "malformed-signature", "wrong-bearer", "basic"],
)
async def test_an_unauthenticated_incident_is_401_and_stores_nothing(rig: Rig, auth: str) -> None:
    response = await rig.send(sentinel_incident(), auth=auth)
    assert response.status_code == 401
    assert await rig.count(IncidentRecord) == 0 and await rig.count(WebhookReject) == 0


async def test_a_stale_or_replayed_signature_is_401(rig: Rig) -> None:
    stale = await rig.send(sentinel_incident(), timestamp=int(time.time()) - 600)
    assert stale.status_code == 401
    body = json.dumps(sentinel_incident()).encode()
    headers = {SIGNATURE_HEADER: sign(SECRET, body), "Content-Type": "application/json"}
    first = await rig.http.post(rig.url + "/api/incidents", content=body, headers=headers)
    replay = await rig.http.post(rig.url + "/api/incidents", content=body, headers=headers)
    assert (first.status_code, replay.status_code) == (200, 401)


async def test_a_signature_over_another_body_is_401(rig: Rig) -> None:
    signed = sign(SECRET, b'{"other": 1}')
    response = await rig.send(sentinel_incident(), auth=json.dumps({SIGNATURE_HEADER: signed}))
    assert response.status_code == 401


@pytest.mark.parametrize(
    "body, reason",
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (json.dumps({"hello": "world"}).encode(), "not an incident we know"),
    ],
    ids=["broken", "binary", "deep", "unknown-shape"],
)
async def test_an_unreadable_body_is_400_with_the_reason_and_kept(rig: Rig, body: bytes, reason: str) -> None:
    response = await rig.send(body, auth="bearer")
    assert response.status_code == 400 and reason in response.json()["error"]
    async with rig.stack.db.sessions() as session:
        kept = (await session.scalars(select(WebhookReject))).one()
    assert reason in kept.reason and kept.body


async def test_an_oversized_body_is_413(rig: Rig) -> None:
    response = await rig.send(b"x" * (2 * 1024 * 1024), auth="bearer")
    assert response.status_code == 413


# -- the war room -------------------------------------------------------------------------------------------
async def test_from_notification_to_isolation_and_release_when_closed(rig: Rig) -> None:
    by_id, by_name = rig.hosts(2)
    hosts = [
        (by_id["computerDnsName"], by_id["id"]),
        (by_name["computerDnsName"], None),
        ("ws-dup.contoso.local", None),  # two devices share this name: shown, never guessed
        ("ws-00", None),  # a prefix of many names: exact names only, so nothing matches
    ]
    response = await rig.send(sentinel_incident(hosts=hosts))
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["created"] and result["rules"] == ["ransomware-high"] and len(result["requests"]) == 1
    request_id = result["requests"][0]
    view = await rig.stack.chatops.view(request_id)
    assert {d.machine_id for d in view.devices} == {by_id["id"], by_name["id"]}
    excluded = sorted((e.name, e.kind) for e in view.exclusions)
    assert excluded == [("ws-00", "not_found"), *[("ws-dup.contoso.local", "ambiguous")] * 2]
    assert view.action_label.startswith("Isolate (Selective)")

    again = (await rig.send(sentinel_incident(hosts=hosts), auth="bearer")).json()
    assert not again["created"] and again["requests"] == [] and again["changed"] == []
    assert await rig.count(IncidentRecord) == 1 and await rig.count(RequestRecord) == 1

    update = await rig.send(sentinel_incident(hosts=hosts, severity="Critical", status="Active"))
    assert sorted(update.json()["changed"]) == ["severity", "status"]

    await rig.stack.wait_for_state(request_id, {"pending"})
    transcript = "\n".join(rig.console.transcript)
    assert "[Microsoft Sentinel] HIGH incident 1042 in soc-law: Ransomware activity" in transcript
    assert "cc @soc-oncall" in transcript
    assert f"  ↳ Request #{request_id}" in transcript  # the card is in the incident's thread
    assert "Update: status New → Active; severity high → critical" in transcript

    assert not (await rig.stack.chatops.decide(BOB, request_id, approve=True)).error
    assert await rig.stack.wait_for_state(request_id, {"succeeded"}) == "succeeded"

    closed = (await rig.send(sentinel_incident(hosts=hosts, severity="Critical", status="Closed"))).json()
    assert closed["changed"] == ["closed", "status"] and len(closed["requests"]) == 1
    release_id = closed["requests"][0]
    release = await rig.stack.chatops.view(release_id)
    assert release.action == "unisolate" and {d.machine_id for d in release.devices} == {by_id["id"], by_name["id"]}
    assert not (await rig.stack.chatops.decide(BOB, release_id, approve=True)).error
    assert await rig.stack.wait_for_state(release_id, {"succeeded"}) == "succeeded"
    released = [a for a in rig.stack.sim.tenant.actions.values() if a.type == "Unisolate"]
    assert sorted(a.machine_id for a in released) == sorted([by_id["id"], by_name["id"]])
    await rig.stack.wait_for_state(release_id, {"succeeded"})
    transcript = "\n".join(rig.console.transcript)
    assert "The incident was closed." in transcript and f"  ↳ Request #{release_id}" in transcript
    assert rig.stack.sim.stats()["duplicate_actions"] == 0


async def test_an_incident_no_rule_matches_is_stored_but_posted_nowhere(rig: Rig) -> None:
    response = await rig.send(sentinel_incident(title="Suspicious sign-in", severity="Low"), auth="bearer")
    assert response.status_code == 200 and response.json()["rules"] == []
    async with rig.stack.db.sessions() as session:
        events = list(await session.scalars(select(IncidentEvent.kind)))
    assert events == ["opened"] and not rig.console.transcript


async def test_incident_targets_typed_by_a_user_use_the_stored_entities(rig: Rig) -> None:
    (host,) = rig.hosts(1)
    await rig.send(
        sentinel_incident(number=7, title="Low thing", severity="Low", hosts=[(host["computerDnsName"], None)])
    )
    reply = await rig.stack.chatops.handle(console_actor("alice"), _here(), 'isolate incident:7 --reason "INC 7"')
    assert not reply.error and reply.request is not None
    assert [d.machine_id for d in reply.request.devices] == [host["id"]]
    unknown = await rig.stack.chatops.handle(console_actor("alice"), _here(), "devices incident:999")
    assert unknown.error and "No incident 999" in unknown.text


def _here() -> Any:
    from approvals.identity import Origin

    return Origin(surface="console", channel_id="soc")


# -- the war room on Slack and Teams ----------------------------------------------------------------------
def _rules(surface: str, channel: str) -> RuleSet:
    return RuleSet.model_validate(
        {
            "rules": [
                {
                    "name": "ransomware-high",
                    "when": {"title_contains": ["ransomware"]},
                    "post": [{"surface": surface, "channel": channel, "mention": "S0SOC"}],
                    "propose": {"action": "isolate"},
                }
            ]
        }
    )


async def test_the_war_room_thread_on_slack() -> None:
    from bot.slack.surface import SlackSurface
    from tests.support.mock_slack import MockSlack
    from tests.support.slack import POLICY as SLACK_POLICY

    slack = MockSlack()
    await slack.start()
    made: list[SlackSurface] = []

    def make(chatops: Any) -> list[Any]:
        made.append(SlackSurface(chatops, bot_token="xoxb-t", signing_secret="s", api_url=slack.url + "/api/"))
        made[0].update_interval_s = 0.0
        return list(made)

    try:
        async with Stack.start(make_surfaces=make, policy=SLACK_POLICY, rules=_rules("slack", "CSOC")) as stack:
            webhook = IncidentWebhook(stack.db, stack.engine.incidents, token=TOKEN)
            runner, port = await start_site(build_app(stack.db, [webhook]), "127.0.0.1", 0)
            (host,) = eligible_hosts(stack, 1)
            body = sentinel_incident(hosts=[(host["computerDnsName"], host["id"])])
            async with httpx.AsyncClient() as http:
                sent = await http.post(
                    f"http://127.0.0.1:{port}/api/incidents", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
                )
            request_id = sent.json()["requests"][0]
            root = await slack.wait_for(
                lambda c: c.method == "chat.postMessage" and "incident" in c.args.get("text", "")
            )
            assert root.args["channel"] == "CSOC" and "<!subteam^S0SOC>" in json.dumps(root.args["blocks"])
            card = await slack.wait_for(
                lambda c: c.method == "chat.postMessage" and "Request #" in c.args.get("text", "")
            )
            root_ts = root.result["ts"]
            assert card.args["thread_ts"] == root_ts
            decided = await stack.chatops.decide(
                _slack_actor("UBOB", "bob@contoso.com", "S0SOC"), request_id, approve=True
            )
            assert not decided.error, decided.text
            assert await stack.wait_for_state(request_id, {"succeeded"}) == "succeeded"
            thread = [c for c in slack.named("chat.postMessage") if c.args.get("thread_ts")]
            assert all(c.args["thread_ts"] == root_ts for c in thread)
            assert any(c.args["text"].startswith(f"Summary of #{request_id}") for c in thread)
            closed = sentinel_incident(status="Closed", hosts=[(host["computerDnsName"], host["id"])])
            async with httpx.AsyncClient() as http:
                sent = await http.post(
                    f"http://127.0.0.1:{port}/api/incidents", json=closed, headers={"Authorization": f"Bearer {TOKEN}"}
                )
            (release_id,) = sent.json()["requests"]
            release = await slack.wait_for(
                lambda c: c.method == "chat.postMessage" and f"Request #{release_id}" in c.args.get("text", "")
            )
            assert release.args["thread_ts"] == root_ts and "Release" in json.dumps(release.args["blocks"])
            await runner.cleanup()
    finally:
        await slack.stop()


def _slack_actor(user: str, email: str, group: str) -> Any:
    from approvals.identity import Actor

    return Actor(platform="slack", user_id=user, display_name=user, email=email, groups=frozenset({group}))


async def test_the_war_room_thread_on_teams() -> None:
    from tests.support.mock_connector import CHANNEL, MockConnector
    from tests.support.teams import POLICY as TEAMS_POLICY

    connector = MockConnector()
    await connector.start()

    def make(chatops: Any) -> list[Any]:
        return [connector.surface(chatops)]

    try:
        async with Stack.start(make_surfaces=make, policy=TEAMS_POLICY, rules=_rules("teams", CHANNEL)) as stack:
            teams = stack.engine.surfaces[0]
            webhook = IncidentWebhook(stack.db, stack.engine.incidents, token=TOKEN)
            runner, port = await start_site(build_app(stack.db, [teams, webhook]), "127.0.0.1", 0)
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(timeout=15) as http:
                # the bot learns how to reach the channel from any message there (or from being added to the team)
                hello = connector.message("alice", "help")
                await http.post(
                    f"{base}/api/messages", json=hello, headers={"Authorization": f"Bearer {connector.token()}"}
                )
                (host,) = eligible_hosts(stack, 1)
                body = sentinel_incident(hosts=[(host["computerDnsName"], host["id"])])
                sent = await http.post(f"{base}/api/incidents", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
            request_id = sent.json()["requests"][0]
            root = await connector.wait_for(
                lambda s: s.kind == "send" and s.card is not None and "incident" in json.dumps(s.card)
            )
            assert root.conversation_id == CHANNEL
            thread = f"{CHANNEL};messageid={root.activity_id}"
            card = await connector.wait_for(
                lambda s: s.card is not None and "Request #" in s.activity.get("summary", "")
            )
            assert card.conversation_id == thread
            decided = await stack.chatops.decide(_teams_actor("aad-bob", "bob@contoso.com"), request_id, approve=True)
            assert not decided.error, decided.text
            assert await stack.wait_for_state(request_id, {"succeeded"}) == "succeeded"
            replies = [s for s in connector.sent if s.kind == "send" and s is not root and s is not card]
            assert replies and all(s.conversation_id == thread for s in replies)
            closed = sentinel_incident(status="Closed", hosts=[(host["computerDnsName"], host["id"])])
            async with httpx.AsyncClient(timeout=15) as http:
                sent = await http.post(
                    f"{base}/api/incidents", json=closed, headers={"Authorization": f"Bearer {TOKEN}"}
                )
            (release_id,) = sent.json()["requests"]
            release = await connector.wait_for(
                lambda s: s.card is not None and f"Request #{release_id}" in s.activity.get("summary", "")
            )
            assert release.conversation_id == thread and "Release" in json.dumps(release.card)
            await runner.cleanup()
    finally:
        await connector.stop()


def _teams_actor(user: str, email: str) -> Any:
    from approvals.identity import Actor

    return Actor(platform="teams", user_id=user, display_name="Bob", email=email)


# -- auto rules and incident targets ----------------------------------------------------------------------
def _auto_policy(rule: str) -> Any:
    from approvals.policy import Policy

    users = ["console:alice", "console:bob"]
    return Policy.from_dict(
        {
            "defaults": {"requesters": users, "approvers": users},
            "actions": {"isolate": {"requesters": users, "approvers": users, "auto_rules": [rule]}},
        }
    )


@pytest.mark.parametrize("allowed", [True, False], ids=["policy-allows", "policy-does-not"])
async def test_an_auto_rule_acts_alone_only_if_the_policy_allows_it(allowed: bool) -> None:
    rules = RuleSet.model_validate(
        {
            "rules": [
                {
                    "name": "auto-isolate",
                    "when": {"title_contains": ["ransomware"]},
                    "post": [{"surface": "console", "channel": "soc"}],
                    "propose": {"action": "isolate"},
                    "auto": True,
                }
            ]
        }
    )
    console = ConsoleSurface(io.StringIO())
    policy = _auto_policy("auto-isolate" if allowed else "some-other-rule")
    async with Stack.start(make_surfaces=lambda _c: [console], rules=rules, policy=policy) as stack:
        (host,) = eligible_hosts(stack, 1)
        data = parse_incident(sentinel_incident(hosts=[(host["computerDnsName"], host["id"])]))
        received = await stack.engine.incidents.receive(data, {})
        (request_id,) = received.requests
        if allowed:
            assert await stack.wait_for_state(request_id, {"succeeded"}) == "succeeded"
            assert [a.machine_id for a in stack.sim.tenant.actions.values()] == [host["id"]]
        else:
            assert await stack.wait_for_state(request_id, {"pending"}) == "pending"
            assert not stack.sim.tenant.actions
            assert any("the policy does not allow it" in line for line in console.transcript)


async def test_a_request_for_the_incident_made_in_its_channel_joins_the_war_room_thread(rig: Rig) -> None:
    (host,) = rig.hosts(1)
    low = sentinel_incident(
        number=77, title="Ransomware precursor", severity="High", hosts=[(host["computerDnsName"], None)]
    )
    first = (await rig.send(low)).json()
    await rig.stack.wait_for_state(first["requests"][0], {"pending"})
    rig.console.transcript.clear()
    reply = await rig.stack.chatops.handle(console_actor("alice"), _here(), 'scan incident:77 --reason "check it"')
    assert not reply.error and reply.request is not None
    await rig.stack.wait_for_state(reply.request.id, {"pending"})
    assert f"  ↳ Request #{reply.request.id}" in "\n".join(rig.console.transcript)


async def test_a_signature_replayed_to_another_replica_is_401(rig: Rig) -> None:
    other = IncidentWebhook(rig.stack.db, rig.stack.engine.incidents, secret=SECRET)
    runner, port = await start_site(build_app(rig.stack.db, [other]), "127.0.0.1", 0)
    try:
        body = json.dumps(sentinel_incident()).encode()
        headers = {SIGNATURE_HEADER: sign(SECRET, body), "Content-Type": "application/json"}
        first = await rig.http.post(rig.url + "/api/incidents", content=body, headers=headers)
        replay = await rig.http.post(f"http://127.0.0.1:{port}/api/incidents", content=body, headers=headers)
    finally:
        await runner.cleanup()
    assert (first.status_code, replay.status_code) == (200, 401)
