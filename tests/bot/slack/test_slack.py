"""Signed Slack requests into the real bolt app over HTTP; outgoing calls captured by a mock Web API."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest

from bot.slack.blocks import request_blocks
from bot.slack.enums import ActionId, ModalId
from bot.slack.surface import SlackSurface
from tests.support.slack import POLICY, SECRET, SlackRig, slack_rig
from tests.support.stack import Stack
from tests.support.views import huge_view


@pytest.fixture
async def rig() -> AsyncIterator[SlackRig]:
    async with slack_rig() as rig_:
        yield rig_


async def test_a_forged_signature_is_401_and_reaches_nothing(rig: SlackRig) -> None:
    response = await rig.post(rig.command("UALICE", 'isolate tag:"Finance Laptops" --reason x'), secret="wrong")
    assert response.status_code == 401
    assert rig.slack.calls == [] and rig.stack.sim.request_log == []


async def test_a_replayed_request_is_401(rig: SlackRig) -> None:
    response = await rig.post(rig.command("UALICE", "help"), age_s=600)
    assert response.status_code == 401 and rig.slack.calls == []


async def test_a_command_is_acknowledged_at_once_and_help_is_ephemeral(rig: SlackRig) -> None:
    started = time.monotonic()
    response = await rig.post(rig.command("UALICE", "help isolate"))
    assert response.status_code == 200 and time.monotonic() - started < 3.0
    reply = await rig.slack.wait_for(lambda c: c.method == "response_url")
    assert reply.args["response_type"] == "ephemeral" and "/mde isolate TARGETS" in reply.args["text"]


async def test_a_typo_gets_an_ephemeral_suggestion(rig: SlackRig) -> None:
    await rig.post(rig.command("UALICE", "isolte tag:x --reason r"))
    reply = await rig.slack.wait_for(lambda c: c.method == "response_url")
    assert "Did you mean `isolate`?" in reply.args["text"] and reply.args["response_type"] == "ephemeral"


async def test_from_slash_command_to_summary_in_the_thread(rig: SlackRig) -> None:
    command = 'isolate tag:"Finance Laptops" --reason "INC-1042" --type selective --active-only'
    await rig.post(rig.command("UALICE", command))
    card = await rig.slack.wait_for(lambda c: c.method == "chat.postMessage" and "blocks" in c.args)
    assert card.args["channel"] == "CSOC"
    header = card.args["blocks"][0]["text"]["text"]
    request_id = int(header.split()[0].lstrip("#"))
    assert "Isolate (Selective)" in header
    buttons = [e["action_id"] for b in card.args["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert ActionId.APPROVE in buttons and ActionId.REJECT in buttons

    await rig.post(rig.click("UALICE", ActionId.APPROVE, request_id))
    refused = await rig.slack.wait_for(lambda c: c.method == "chat.postEphemeral")
    assert refused.args["user"] == "UALICE" and "own request" in refused.args["text"]

    await rig.post(rig.click("UBOB", ActionId.APPROVE, request_id))
    await rig.stack.wait_for_state(request_id, {"approved", "executing", "succeeded"}, timeout=10)
    assert await rig.stack.wait_for_state(request_id, {"succeeded"}) == "succeeded"
    updates = rig.slack.named("chat.update")
    assert updates and "Succeeded" in json.dumps(updates[-1].args["blocks"])
    thread = [c.args["text"] for c in rig.slack.named("chat.postMessage") if c.args.get("thread_ts")]
    assert any("Approved by bob" in t for t in thread)
    assert any(t.startswith(f"Summary of #{request_id}: Succeeded") for t in thread)
    upload = await rig.slack.wait_for(lambda c: c.method == "upload")
    assert upload.args["bytes"].startswith(b"machine_id,name,os_platform,state")
    assert rig.stack.sim.stats()["duplicate_actions"] == 0


async def test_reject_asks_for_a_reason_in_a_modal(rig: SlackRig) -> None:
    await rig.post(rig.command("UALICE", "scan device:ws-0005 --reason r"))
    card = await rig.slack.wait_for(lambda c: c.method == "chat.postMessage" and "blocks" in c.args)
    request_id = int(card.args["blocks"][0]["text"]["text"].split()[0].lstrip("#"))
    await rig.post(rig.click("UBOB", ActionId.REJECT, request_id))
    opened = await rig.slack.wait_for(lambda c: c.method == "views.open")
    assert opened.args["view"]["callback_id"] == ModalId.REJECT
    response = await rig.post(rig.modal("UBOB", ModalId.REJECT, request_id, "   "))
    assert response.status_code == 200 and response.json()["response_action"] == "errors"
    await rig.post(rig.modal("UBOB", ModalId.REJECT, request_id, "wrong host"))
    assert await rig.stack.wait_for_state(request_id, {"rejected"}) == "rejected"


def test_a_card_for_5000_devices_stays_within_slack_limits() -> None:
    view = huge_view(state="executing", name_suffix=".contoso.local" + "<@U1>" * 3)
    blocks = request_blocks(view)
    assert len(blocks) <= 50
    texts = [b["text"]["text"] for b in blocks if "text" in b and b["type"] == "section"]
    assert all(len(t) <= 3000 for t in texts)
    assert len(json.dumps(blocks)) < 40000
    assert "<@U1>" not in json.dumps(blocks)  # names cannot mention or link anyone
    devices = next(t for t in texts if "ws-00000" in t)
    more = re.search(r"and (\d+) more", devices)
    assert more and devices.count("• `") + int(more.group(1)) == 5000


async def test_socket_mode_is_built_from_an_app_token_without_a_signing_secret() -> None:
    async with Stack.start(policy=POLICY, start_engine=False) as stack:
        surface = SlackSurface(stack.chatops, bot_token="xoxb-test", signing_secret="", app_token="xapp-test")
        assert surface._socket is not None and surface._socket.app_token == "xapp-test"
        plain = SlackSurface(stack.chatops, bot_token="xoxb-test", signing_secret=SECRET)
        assert plain._socket is None


async def test_show_all_from_another_channel_reveals_nothing(rig: SlackRig) -> None:
    await rig.post(rig.command("UALICE", "scan device:ws-0005 --reason r"))
    card = await rig.slack.wait_for(lambda c: c.method == "chat.postMessage" and "blocks" in c.args)
    request_id = int(card.args["blocks"][0]["text"]["text"].split()[0].lstrip("#"))
    forged = json.loads(dict(parse_qsl(rig.click("UBOB", ActionId.SHOW_ALL, request_id)))["payload"])
    forged["channel"] = {"id": "COTHER"}
    forged["container"]["channel_id"] = "COTHER"
    await rig.post(urlencode({"payload": json.dumps(forged)}))
    refused = await rig.slack.wait_for(lambda c: c.method == "chat.postEphemeral")
    assert "does not belong" in refused.args["text"] and not rig.slack.named("files.getUploadURLExternal")


async def test_the_register_and_a_drift_reach_slack_as_a_reply_a_thread_line_and_a_card(rig: SlackRig) -> None:
    from bot.containment_reconcile import ReconcileConfig, Reconciler

    await rig.post(rig.command("UALICE", 'isolate device:ws-0005 --reason "IR-7" --for 8h'))
    card = await rig.slack.wait_for(lambda c: c.method == "chat.postMessage" and "blocks" in c.args)
    header = card.args["blocks"][0]["text"]["text"]
    request_id = int(header.split()[0].lstrip("#"))
    assert "release proposed 8h after isolation" in header
    await rig.post(rig.click("UBOB", ActionId.APPROVE, request_id))
    assert await rig.stack.wait_for_state(request_id, {"succeeded"}) == "succeeded"

    await rig.post(rig.command("UBOB", "isolated"))
    listed = await rig.slack.wait_for(lambda c: c.method == "response_url" and "Isolated now" in c.args["text"])
    assert "Isolated now: 1 device(s)." in listed.args["text"] and "ws-0005" in listed.args["text"]

    async with httpx.AsyncClient() as http:
        machines = rig.stack.sim.tenant.machines.values()
        machine = next(m for m in machines if m["computerDnsName"].startswith("ws-0005."))
        await http.post(f"{rig.stack.sim.url}/_sim/portal", json={"action": "release", "machineId": machine["id"]})
    report = await Reconciler(rig.stack.db, rig.stack.chatops, config=ReconcileConfig(interval_s=0)).run_once()
    assert report is not None and len(report.proposals) == 1
    await rig.stack.engine.delivery.drain("slack")

    drift = await rig.slack.wait_for(
        lambda c: c.method == "chat.postMessage" and c.args.get("text", "").startswith("Drift:")
    )
    approved = next(c for c in rig.slack.named("chat.postMessage") if c.args.get("text", "").startswith("Approved by"))
    assert drift.args["thread_ts"] == approved.args["thread_ts"], "in the isolating request's thread"
    assert "ws-0005" in drift.args["text"]
    proposal = await rig.slack.wait_for(
        lambda c: c.method == "chat.postMessage" and f"#{report.proposals[0]}" in json.dumps(c.args.get("blocks", []))
    )
    buttons = [e["action_id"] for b in proposal.args["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert ActionId.APPROVE in buttons
