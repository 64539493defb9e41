"""Bot Framework activities posted to /api/messages over HTTP with signed tokens; the bot's replies, card
updates and roster calls captured by a local Bot Connector; the MDE simulator behind it all."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from approvals.policy import Policy
from bot.server import build_app, start_site
from bot.teams import cards
from bot.teams.connections import bot_connections
from bot.teams.ingress import host_allowed
from bot.teams.pacing import ConversationPacer
from bot.teams.surface import TeamsSurface, base_conversation_id
from tests.support.mock_connector import APP_ID, CHANNEL, CONNECTOR_TOKEN, TENANT_ID, MockConnector
from tests.support.stack import Stack
from tests.support.teams import POLICY, TeamsRig, connector_rig


@pytest.fixture
async def rig() -> AsyncIterator[TeamsRig]:
    async with connector_rig() as rig_:
        yield rig_


# -- inbound authentication ---------------------------------------------------------------------------------
async def test_no_token_is_401_and_reaches_nothing(rig: TeamsRig) -> None:
    response = await rig.post(rig.connector.message("alice", 'isolate tag:"Finance Laptops" --reason x'), token=None)
    assert response.status_code == 401
    assert rig.connector.sent == [] and rig.stack.sim.request_log == []


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(
            lambda c: c.token(key=rsa.generate_private_key(public_exponent=65537, key_size=2048)), id="forged"
        ),
        pytest.param(lambda c: c.token(aud="some-other-bot"), id="wrong-audience"),
        pytest.param(lambda c: c.token(iss="https://evil.example.com"), id="wrong-issuer"),
        pytest.param(lambda c: c.token(exp=int(time.time()) - 3600, nbf=int(time.time()) - 7200), id="expired"),
        pytest.param(lambda c: c.token(serviceurl="https://smba.trafficmanager.net/emea/"), id="other-service-url"),
        pytest.param(lambda c: "Basic " + c.token(), id="not-bearer"),
    ],
)
async def test_a_bad_token_is_401_and_reaches_nothing(rig: TeamsRig, make_token: Any) -> None:
    token = make_token(rig.connector)
    header = token if token.startswith("Basic ") else f"Bearer {token}"
    response = await rig.post(rig.connector.message("alice", "status"), token=header)
    assert response.status_code == 401
    assert rig.connector.sent == []


async def test_a_service_url_outside_the_allow_list_is_401(rig: TeamsRig) -> None:
    activity = rig.connector.message("alice", "help")
    activity["serviceUrl"] = "http://10.0.0.5:8080"
    token = rig.connector.token(serviceurl="http://10.0.0.5:8080")
    response = await rig.post(activity, token=f"Bearer {token}")
    assert response.status_code == 401 and rig.connector.sent == []


async def test_a_body_that_is_not_an_activity_is_400(rig: TeamsRig) -> None:
    response = await rig.http.post(
        rig.url + "/api/messages",
        content=b"{not json",
        headers={"Authorization": f"Bearer {rig.connector.token()}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400


# -- commands ---------------------------------------------------------------------------------------------
async def test_a_mention_gets_help_in_the_thread(rig: TeamsRig) -> None:
    activity = rig.connector.message("alice", "help isolate")
    response = await rig.post(activity)
    assert response.status_code in (200, 201, 202)
    reply = await rig.connector.wait_for(lambda s: s.kind == "reply")
    assert "isolate TARGETS" in reply.text
    assert reply.conversation_id == activity["conversation"]["id"]  # in the user's thread
    roster = rig.connector.unauthorized_calls
    assert roster == 0  # every outbound call carried the bot's token


async def test_a_personal_chat_command_works_without_a_mention(rig: TeamsRig) -> None:
    await rig.post(
        rig.connector.message("bob", "isolte tag:x --reason r", conversation="a:personal-bob", mention=False)
    )
    reply = await rig.connector.wait_for(lambda s: s.kind == "reply")
    assert "Did you mean `isolate`?" in reply.text


async def test_from_mention_to_summary_in_the_thread(rig: TeamsRig) -> None:
    command = 'isolate tag:"Finance Laptops" --reason "INC-1042" --type selective --active-only'
    await rig.post(rig.connector.message("alice", command))
    request_id, card_post = await rig.card_for_new_request()
    assert card_post.conversation_id == CHANNEL  # a new post in the channel, not inside the command's thread
    card = card_post.card
    assert card is not None and card["version"] == "1.5"
    assert "Isolate (Selective)" in card["body"][0]["text"]
    verbs = [a.get("verb") or a["card"]["actions"][0]["verb"] for a in card["actions"]]
    assert cards.VERB_APPROVE in verbs and cards.VERB_REJECT in verbs
    assert card["refresh"]["userIds"] == ["29:alice"]  # the requester's copy refreshes in a big channel too

    refused = await rig.post(rig.connector.execute("alice", cards.VERB_APPROVE, {"request_id": request_id}))
    assert refused.status_code == 200
    body = refused.json()
    assert body["type"] == "application/vnd.microsoft.activity.message" and "own request" in body["value"]

    approved = await rig.post(rig.connector.execute("bob", cards.VERB_APPROVE, {"request_id": request_id}))
    assert approved.status_code == 200 and approved.json()["type"] == cards.CARD_CONTENT_TYPE
    assert approved.json()["value"]["refresh"]["userIds"] == ["29:bob"]  # the clicker's own copy
    assert await rig.stack.wait_for_state(request_id, {"succeeded"}) == "succeeded"

    updates = [s for s in rig.connector.sent if s.kind == "update"]
    assert updates and all(u.activity_id == card_post.activity_id for u in updates)
    assert "Succeeded" in json.dumps(updates[-1].card)
    thread = f"{CHANNEL};messageid={card_post.activity_id}"
    in_thread = [s for s in rig.connector.sent if s.conversation_id == thread]
    assert any("Approved by Bob" in s.text for s in in_thread)
    summary = [s for s in in_thread if s.card is not None]
    assert summary and f"Summary of #{request_id}: Succeeded" in json.dumps(summary[-1].card)
    assert rig.stack.sim.stats()["duplicate_actions"] == 0
    assert rig.connector.unauthorized_calls == 0


async def test_new_posts_carry_no_null_id(rig: TeamsRig) -> None:
    """Activity.id is an optional string: a schema-checking connector (the Agents Playground) refuses null."""
    await rig.post(rig.connector.message("alice", "scan device:ws-0005 --reason r"))
    _request_id, card_post = await rig.card_for_new_request()
    reply = await rig.connector.wait_for(lambda s: s.kind == "reply")
    for sent in (card_post, reply):
        assert sent.activity.get("id", "absent") is not None, sent.activity


async def test_reject_needs_a_reason_and_the_card_then_says_who_and_why(rig: TeamsRig) -> None:
    await rig.post(rig.connector.message("alice", "scan device:ws-0005 --reason r"))
    request_id, posted = await rig.card_for_new_request()
    assert posted.card is not None
    reject = next(a for a in posted.card["actions"] if a["title"] == "Reject")
    field = reject["card"]["body"][0]["id"]  # Teams sends each input under its own id
    click = {"request_id": request_id, "verb": cards.VERB_REJECT}
    empty = await rig.post(rig.connector.execute("bob", cards.VERB_REJECT, click))
    assert "reason is required" in empty.json()["value"]
    rejected = await rig.post(rig.connector.execute("bob", cards.VERB_REJECT, {**click, field: "wrong host"}))
    assert await rig.stack.wait_for_state(request_id, {"rejected"}) == "rejected"
    facts = {f["title"]: f["value"] for f in rejected.json()["value"]["body"][1]["facts"]}
    assert facts["Rejected by"] == "Bob: wrong host"


async def test_a_click_on_a_forged_card_is_refused_politely(rig: TeamsRig) -> None:
    response = await rig.post(rig.connector.execute("bob", cards.VERB_APPROVE, {"request_id": "not-a-number"}))
    assert response.status_code == 200 and "not a request card" in response.json()["value"]


async def test_teams_and_email_identity_is_one_person_for_the_two_person_rule(rig: TeamsRig) -> None:
    """The requester approving from another platform under the same e-mail is still the requester."""
    await rig.post(rig.connector.message("alice", "scan device:ws-0007 --reason r"))
    request_id, _ = await rig.card_for_new_request()
    from approvals.identity import Actor

    reply = await rig.stack.chatops.decide(
        Actor(platform="slack", user_id="UALICE", email="alice@contoso.com"), request_id, approve=True
    )
    assert reply.error and "own request" in reply.text


async def test_throttled_sends_are_retried_after_retry_after_and_posted_once(rig: TeamsRig) -> None:
    rig.connector.throttle_next = 3
    await rig.post(rig.connector.message("alice", "scan device:ws-0005 --reason r"))
    request_id, _ = await rig.card_for_new_request()
    await rig.stack.wait_for_state(request_id, {"pending"})
    cards_sent = [s for s in rig.connector.sent if s.card is not None and s.kind == "send"]
    assert rig.connector.throttled == 3 and len(cards_sent) == 1


# -- pieces -------------------------------------------------------------------------------------------------
def test_thread_ids_and_service_hosts() -> None:
    assert base_conversation_id("19:abc@thread.tacv2;messageid=1700000000001") == "19:abc@thread.tacv2"
    hosts = ("smba.trafficmanager.net", "botframework.com")
    assert host_allowed("https://smba.trafficmanager.net/emea/", hosts)
    assert not host_allowed("http://smba.trafficmanager.net/emea/", hosts)  # https only, except loopback
    assert not host_allowed("https://smba.trafficmanager.net.evil.com/", hosts)
    assert not host_allowed("https://user:pw@smba.trafficmanager.net/", hosts)
    assert host_allowed("http://127.0.0.1:5000/", ("127.0.0.1",))


async def test_the_pacer_keeps_a_conversation_within_seven_per_second() -> None:
    pacer = ConversationPacer(windows=((7, 0.5),), min_edit_interval_s=0.0)
    stamps = []
    for _ in range(15):
        await pacer.send("c1")
        stamps.append(time.monotonic())
    for i in range(7, len(stamps)):
        assert stamps[i] - stamps[i - 7] >= 0.5 - 0.01


async def test_the_surface_built_from_settings_answers_over_http() -> None:
    from bot.config import load_settings
    from bot.teams.factory import teams_surface_from_settings

    connector = MockConnector()
    await connector.start()
    try:
        settings = load_settings(**connector.settings())
        surfaces: list[TeamsSurface] = []

        def make(chatops):  # type: ignore[no-untyped-def]
            surfaces.append(teams_surface_from_settings(settings, chatops))
            return surfaces

        async with Stack.start(make_surfaces=make, policy=POLICY) as stack:
            runner, port = await start_site(build_app(stack.db, surfaces), "127.0.0.1", 0)
            async with httpx.AsyncClient() as http:
                response = await http.post(
                    f"http://127.0.0.1:{port}/api/messages",
                    json=connector.message("alice", "help"),
                    headers={"Authorization": f"Bearer {connector.token()}"},
                )
            await runner.cleanup()
        assert response.status_code in (200, 201, 202)
        assert "@mde isolate" in (await connector.wait_for(lambda s: s.kind == "reply")).text
    finally:
        await connector.stop()


def test_single_tenant_settings_are_required_and_build_an_msal_connection() -> None:
    from microsoft_agents.authentication.msal import MsalConnectionManager

    from bot.config import SettingsError, load_settings

    with pytest.raises(SettingsError, match="TEAMS_AUTH=client_secret needs TEAMS_TENANT_ID, TEAMS_CLIENT_SECRET"):
        load_settings(mde_auth="static", mde_static_token="t", teams_app_id=APP_ID)
    manager = bot_connections(app_id=APP_ID, tenant_id=TENANT_ID, auth="client_secret", client_secret="s")
    assert isinstance(manager, MsalConnectionManager)
    config = manager.get_default_connection_configuration()
    assert (config.CLIENT_ID, config.TENANT_ID) == (APP_ID, TENANT_ID)


async def test_a_body_that_is_not_an_activity_without_a_valid_token_is_401(rig: TeamsRig) -> None:
    response = await rig.http.post(
        rig.url + "/api/messages",
        content=b"{not json",
        headers={"Authorization": "Bearer not-a-token", "Content-Type": "application/json"},
    )
    assert response.status_code == 401


async def test_show_all_from_another_conversation_reveals_nothing(rig: TeamsRig) -> None:
    await rig.post(rig.connector.message("alice", "scan device:ws-0005 --reason r"))
    request_id, _ = await rig.card_for_new_request()
    forged = rig.connector.execute("bob", cards.VERB_SHOW_ALL, {"request_id": request_id})
    forged["conversation"] = {"id": "a:someone-elses-chat", "conversationType": "personal"}
    response = await rig.post(forged)
    assert "not a request card of this conversation" in response.json()["value"]
    here = await rig.post(rig.connector.execute("bob", cards.VERB_SHOW_ALL, {"request_id": request_id}))
    assert "devices are posted" in here.json()["value"]


async def test_an_activity_from_another_tenant_is_401(rig: TeamsRig) -> None:
    activity = rig.connector.message("alice", "help")
    activity["channelData"] = {"tenant": {"id": "99999999-9999-9999-9999-999999999999"}}
    activity["conversation"]["tenantId"] = "99999999-9999-9999-9999-999999999999"
    response = await rig.post(activity)
    assert response.status_code == 401 and rig.connector.sent == []


async def test_entra_group_principals_are_read_from_graph_when_enabled() -> None:
    connector = MockConnector()
    await connector.start()
    policy = Policy.from_dict(
        {"defaults": {"requesters": ["email:alice@contoso.com"], "approvers": ["entra-group:grp-soc"]}}
    )
    surfaces: list[TeamsSurface] = []

    def make(chatops):  # type: ignore[no-untyped-def]
        surfaces.append(connector.surface(chatops, graph_url=connector.url))
        return surfaces

    try:
        async with Stack.start(make_surfaces=make, policy=policy) as stack:
            runner, port = await start_site(build_app(stack.db, surfaces), "127.0.0.1", 0)
            async with httpx.AsyncClient(timeout=15) as http:
                rig = TeamsRig(stack, connector, f"http://127.0.0.1:{port}", http)
                await rig.post(connector.message("alice", "scan device:ws-0005 --reason r"))
                request_id, _ = await rig.card_for_new_request()
                carol = await rig.post(connector.execute("carol", cards.VERB_APPROVE, {"request_id": request_id}))
                assert carol.json()["type"] == "application/vnd.microsoft.activity.message"  # not in grp-soc
                bob = await rig.post(connector.execute("bob", cards.VERB_APPROVE, {"request_id": request_id}))
                assert bob.json()["type"] == cards.CARD_CONTENT_TYPE  # grp-soc is on his second Graph page
            await runner.cleanup()
            assert await stack.wait_for_state(request_id, {"approved", "executing", "succeeded"}) != "pending"
        assert connector.graph_calls >= 3 and connector.unauthorized_calls == 0
    finally:
        await connector.stop()


async def test_a_failed_graph_lookup_gives_no_groups() -> None:
    from bot.teams.graph import GraphGroups

    connector = MockConnector()
    await connector.start()
    try:

        async def wrong_token() -> str:
            return "not-the-bot-token"

        async def right_token() -> str:
            return CONNECTOR_TOKEN

        assert await GraphGroups(wrong_token, base_url=connector.url).groups_of("aad-bob") == frozenset()
        assert await GraphGroups(right_token, base_url=connector.url).groups_of("aad-bob") == {
            "grp-analysts",
            "grp-soc",
        }
        assert await GraphGroups(right_token, base_url="http://127.0.0.1:9").groups_of("aad-bob") == frozenset()
    finally:
        await connector.stop()


async def test_the_register_and_a_drift_reach_teams_as_a_reply_a_thread_line_and_a_card(rig: TeamsRig) -> None:
    from bot.containment_reconcile import ReconcileConfig, Reconciler

    await rig.post(rig.connector.message("alice", 'isolate device:ws-0005 --reason "IR-7" --for 8h'))
    request_id, card_post = await rig.card_for_new_request()
    assert card_post.card is not None and "release proposed 8h after isolation" in card_post.card["body"][0]["text"]
    await rig.post(rig.connector.execute("bob", cards.VERB_APPROVE, {"request_id": request_id}))
    assert await rig.stack.wait_for_state(request_id, {"succeeded"}) == "succeeded"

    await rig.post(rig.connector.message("bob", "isolated"))
    listed = await rig.connector.wait_for(lambda s: s.kind == "reply" and "Isolated now" in (s.text or ""))
    assert "Isolated now: 1 device(s)." in listed.text and "ws-0005" in listed.text

    machine = next(m for m in rig.stack.sim.tenant.machines.values() if m["computerDnsName"].startswith("ws-0005."))
    await rig.http.post(f"{rig.stack.sim.url}/_sim/portal", json={"action": "release", "machineId": machine["id"]})
    report = await Reconciler(rig.stack.db, rig.stack.chatops, config=ReconcileConfig(interval_s=0)).run_once()
    assert report is not None and len(report.proposals) == 1
    await rig.stack.engine.delivery.drain("teams")

    thread = f"{CHANNEL};messageid={card_post.activity_id}"
    drift = await rig.connector.wait_for(lambda s: (s.text or "").startswith("Drift:"))
    assert drift.conversation_id == thread and "ws-0005" in drift.text
    proposal = await rig.connector.wait_for(
        lambda s: s.kind == "send" and s.card is not None and f"#{report.proposals[0]}" in s.card["body"][0]["text"]
    )
    assert proposal.card is not None and cards.VERB_APPROVE in json.dumps(proposal.card["actions"])
