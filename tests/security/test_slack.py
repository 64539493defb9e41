"""``POST /slack/events`` attacked from outside, with bodies shaped as Slack documents them (slash command
form fields; ``block_actions`` in a ``payload`` form field; Events API ``event_callback`` JSON with
``event_id``), signed as Slack signs them (``v0=`` HMAC-SHA256 of ``v0:<timestamp>:<body>``). Each asserts
the HTTP answer and that no request, decision, job or MDE action came of it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest

from approvals.incidents.models import WebhookNonce
from approvals.service import ChatOps
from bot.server import build_app, start_site
from bot.slack.enums import ActionId
from bot.slack.ingress import SlackIngress
from bot.slack.surface import SlackSurface
from bot.surfaces.base import ChatSurface
from tests.support.footprint import NOTHING, footprint
from tests.support.mock_slack import MockSlack
from tests.support.slack import POLICY, SECRET, SlackRig
from tests.support.stack import served


def signed(body: str, *, ts: int | None = None, secret: str = SECRET, **extra: str) -> dict[str, str]:
    stamp = str(int(time.time()) if ts is None else ts)
    signature = "v0=" + hmac.new(secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    content_type = "application/json" if body.startswith("{") else "application/x-www-form-urlencoded"
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature, "Content-Type": content_type, **extra}


def surface_on(slack: MockSlack, chatops: ChatOps) -> SlackSurface:
    return SlackSurface(
        chatops, bot_token="xoxb-test", signing_secret=SECRET, api_url=slack.url + "/api/", update_interval_s=0.0
    )


@pytest.fixture
async def rig() -> AsyncIterator[SlackRig]:
    slack = MockSlack()
    await slack.start()

    def make(chatops: ChatOps) -> list[ChatSurface]:
        return [surface_on(slack, chatops)]

    try:
        async with served(make, policy=POLICY) as (stack, url, http):
            yield SlackRig(stack, slack, url, http)
    finally:
        await slack.stop()


def ingress(rig: SlackRig) -> SlackIngress:
    surface = rig.stack.engine.surfaces[0]
    assert isinstance(surface, SlackSurface)
    return surface.ingress


async def send(rig: SlackRig, body: str, headers: dict[str, str], url: str | None = None) -> httpx.Response:
    return await rig.http.post((url or rig.url) + "/slack/events", content=body, headers=headers)


async def pending_request(rig: SlackRig) -> int:
    assert (await rig.post(rig.command("UALICE", "scan device:ws-0005 --reason r"))).status_code == 200
    card = await rig.slack.wait_for(lambda c: c.method == "chat.postMessage" and "blocks" in c.args)
    request_id = int(card.args["blocks"][0]["text"]["text"].split()[0].lstrip("#"))
    await rig.stack.wait_for_state(request_id, {"pending"})
    return request_id


# -- replay ---------------------------------------------------------------------------------------------------
async def test_the_same_signed_command_twice_creates_one_request(rig: SlackRig) -> None:
    body = rig.command("UALICE", "isolate device:ws-0005 --reason r")
    headers = signed(body)
    assert (await send(rig, body, headers)).status_code == 200
    await rig.slack.wait_for(lambda c: c.method == "chat.postMessage" and "blocks" in c.args)
    after_first = await footprint(rig.stack)
    assert after_first.requests == 1
    assert (await send(rig, body, headers)).status_code == 401
    await rig.stack.engine.delivery.drain("slack")
    assert await footprint(rig.stack) == after_first


async def test_the_same_signed_approval_twice_decides_once(rig: SlackRig) -> None:
    request_id = await pending_request(rig)
    body = rig.click("UBOB", ActionId.APPROVE, request_id)
    headers = signed(body)
    assert (await send(rig, body, headers)).status_code == 200
    await rig.stack.wait_for_state(request_id, {"approved", "executing", "succeeded"})
    assert (await send(rig, body, headers)).status_code == 401
    assert (await footprint(rig.stack)).decisions == 1


async def test_a_replay_to_another_replica_is_refused(rig: SlackRig) -> None:
    """Two replicas on one database: the nonce one of them stored refuses the replay at the other."""
    other = surface_on(rig.slack, rig.stack.chatops)
    runner, port = await start_site(build_app(rig.stack.db, [other]), "127.0.0.1", 0)
    try:
        body = rig.command("UALICE", "isolate device:ws-0005 --reason r")
        headers = signed(body)
        assert (await send(rig, body, headers)).status_code == 200
        await rig.slack.wait_for(lambda c: c.method == "chat.postMessage" and "blocks" in c.args)
        await ingress(rig).settled()  # on SQLite the record is written in the background
        after_first = await footprint(rig.stack)
        assert (await send(rig, body, headers, url=f"http://127.0.0.1:{port}")).status_code == 401
        assert await footprint(rig.stack) == after_first
    finally:
        await runner.cleanup()


async def test_a_replay_dressed_as_a_slack_retry_is_answered_and_not_run(rig: SlackRig) -> None:
    body = rig.command("UALICE", "isolate device:ws-0005 --reason r")
    headers = signed(body)
    assert (await send(rig, body, headers)).status_code == 200
    await rig.slack.wait_for(lambda c: c.method == "chat.postMessage" and "blocks" in c.args)
    after_first = await footprint(rig.stack)
    retry = {**headers, "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    assert (await send(rig, body, retry)).status_code == 200
    assert await footprint(rig.stack) == after_first


async def test_an_events_api_retry_is_answered_200_and_not_run_again(rig: SlackRig) -> None:
    """Slack re-sends an event it thinks was not taken, newly signed, with X-Slack-Retry-Num."""
    event = {
        "token": "x",
        "team_id": "T1",
        "api_app_id": "A1",
        "type": "event_callback",
        "event_id": "Ev0PV52K21",
        "event_time": int(time.time()),
        "event": {"type": "app_mention", "user": "UALICE", "text": "<@UBOT> status", "channel": "CSOC"},
    }
    body = json.dumps(event)
    await send(rig, body, signed(body))
    retry = signed(body, ts=int(time.time()) - 1, **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    answer = await send(rig, body, retry)
    assert answer.status_code == 200
    assert await footprint(rig.stack) == NOTHING


# -- forged, stale, malformed ---------------------------------------------------------------------------------
async def test_a_forged_signature_is_401(rig: SlackRig) -> None:
    body = rig.command("UALICE", "isolate device:ws-0005 --reason r")
    assert (await send(rig, body, signed(body, secret="guessed"))).status_code == 401
    assert await footprint(rig.stack) == NOTHING and rig.slack.calls == []


async def test_a_signature_older_than_five_minutes_is_401(rig: SlackRig) -> None:
    body = rig.command("UALICE", "isolate device:ws-0005 --reason r")
    assert (await send(rig, body, signed(body, ts=int(time.time()) - 400))).status_code == 401
    assert await footprint(rig.stack) == NOTHING


async def test_a_deeply_nested_signed_payload_is_400_and_reaches_nothing(rig: SlackRig) -> None:
    request_id = await pending_request(rig)
    before = await footprint(rig.stack)
    click = json.loads(dict(parse_qsl(rig.click("UBOB", ActionId.APPROVE, request_id)))["payload"])
    body = urlencode({"payload": json.dumps(click)[:-1] + ', "x": ' + "[" * 5000 + "]" * 5000 + "}"})
    answer = await send(rig, body, signed(body))
    assert answer.status_code == 400
    assert await footprint(rig.stack) == before


async def test_an_unknown_action_id_is_refused_and_reaches_nothing(rig: SlackRig) -> None:
    """A signed click on a button no listener owns (a card of another app, a crafted id) decides nothing."""
    request_id = await pending_request(rig)
    before = await footprint(rig.stack)
    body = rig.click("UBOB", "mde_approve_all", request_id)
    answer = await send(rig, body, signed(body))
    assert answer.status_code == 404 and answer.json() == {"error": "unhandled request"}
    await rig.stack.engine.delivery.drain("slack")
    assert await footprint(rig.stack) == before
    assert not [c for c in rig.slack.calls if c.method in ("chat.postEphemeral", "views.open")]


async def test_control_characters_in_a_device_name_are_one_sentence(rig: SlackRig) -> None:
    body = rig.command("UALICE", 'isolate device:"ws-0005\u0007" --reason r')
    assert (await send(rig, body, signed(body))).status_code == 200
    reply = await rig.slack.wait_for(lambda c: c.method == "response_url")
    assert "Traceback" not in reply.args["text"] and reply.args["text"].count("\n") <= 1
    assert await footprint(rig.stack) == NOTHING


async def test_a_command_is_answered_while_the_worker_holds_the_sqlite_write_lock(rig: SlackRig) -> None:
    """SQLite has one writer: the ack must not wait for the lock to record the signature (Slack gives up after
    3 s; it waited up to 4 s behind a 1,000-device run's writes). A replay is still refused at once."""
    assert not rig.stack.db.is_postgres
    body = rig.command("UALICE", "help")
    headers = signed(body)
    async with rig.stack.db.transaction() as session:  # a writer holds the lock (busy_timeout is 30 s)
        session.add(WebhookNonce(digest="0" * 64))
        await session.flush()
        answer = await asyncio.wait_for(send(rig, body, headers), timeout=10)
        assert answer.status_code == 200
        assert (await asyncio.wait_for(send(rig, body, headers), timeout=10)).status_code == 401
    await ingress(rig).settled()
    restarted = SlackIngress(rig.stack.db, SECRET)  # a restart forgets the memory; the table remembers
    assert not await restarted._first("signature", headers["X-Slack-Signature"])
