"""The new containment commands through the real Slack (signed requests into slack-bolt) and Teams
(Bot Framework tokens into the Agents SDK) code paths: card, approval click, thread and summary."""

from __future__ import annotations

import json

from bot.slack.enums import ActionId
from bot.teams import cards
from mde.simulator.tenant import COLLECTABLE, RARE_FILE
from tests.support.mock_connector import CHANNEL
from tests.support.slack import SlackRig
from tests.support.teams import TeamsRig


async def test_slack_block_card_shows_the_indicator_and_runs_on_approval(slack_rig: SlackRig) -> None:
    rig = slack_rig
    await rig.post(rig.command("UALICE", 'block domain:evil.example.com --for 7d --reason "INC-1042 C2"'))
    card = await rig.slack.wait_for(lambda c: c.method == "chat.postMessage" and "blocks" in c.args)
    text = json.dumps(card.args["blocks"])
    assert "Indicator DomainName evil.example.com \\u2192 Block" in text
    assert "*Devices*\\ntenant-wide" in text and "Scope: every device in the tenant" in text
    request_id = int(card.args["blocks"][0]["text"]["text"].split()[0].lstrip("#"))
    await rig.post(rig.click("UBOB", ActionId.APPROVE, request_id))
    assert await rig.stack.wait_for_state(request_id, {"succeeded"}) == "succeeded"
    thread = [c.args["text"] for c in rig.slack.named("chat.postMessage") if c.args.get("thread_ts")]
    assert any("is in MDE: DomainName evil.example.com → Block on every device" in t for t in thread)
    assert any(t.startswith(f"Summary of #{request_id}: Succeeded.") for t in thread)
    assert [r["indicatorValue"] for r in rig.stack.sim.indicators.rows.values()] == ["evil.example.com"]


async def test_teams_block_card_shows_the_indicator_and_runs_on_approval(teams_rig: TeamsRig) -> None:
    rig = teams_rig
    await rig.post(rig.connector.message("alice", 'block ip:203.0.113.7 --action audit --reason "watch C2"'))
    request_id, card_post = await rig.card_for_new_request()
    assert card_post.card is not None
    body = json.dumps(card_post.card)
    assert "Indicator IpAddress 203.0.113.7 \\u2192 Audit" in body and "Scope: every device in the tenant" in body
    approved = await rig.post(rig.connector.execute("bob", cards.VERB_APPROVE, {"request_id": request_id}))
    assert approved.status_code == 200
    assert await rig.stack.wait_for_state(request_id, {"succeeded"}) == "succeeded"
    thread = f"{CHANNEL};messageid={card_post.activity_id}"
    texts = [s.text for s in rig.connector.sent if s.conversation_id == thread and s.text]
    assert any("is in MDE: IpAddress 203.0.113.7 → Audit" in t for t in texts)
    (row,) = rig.stack.sim.indicators.rows.values()
    assert row["action"] == "Audit" and row["generateAlert"] is True


async def test_slack_user_target_card_shows_last_logons(slack_rig: SlackRig) -> None:
    rig = slack_rig
    await rig.post(rig.command("UALICE", 'scan user:alice@contoso.com --reason "phished"'))
    card = await rig.slack.wait_for(lambda c: c.method == "chat.postMessage" and "blocks" in c.args)
    text = json.dumps(card.args["blocks"])
    assert text.count("_alice last logon ") == 2 and "older than 30 days" in text


async def test_slack_quarantine_reports_per_device_and_collect_file_posts_its_link(
    slack_rig: SlackRig,
) -> None:
    rig = slack_rig
    await rig.post(rig.command("UALICE", f'quarantine sha1:{RARE_FILE[0]} --reason "INC-1042 dropper"'))
    card = await rig.slack.wait_for(lambda c: c.method == "chat.postMessage" and "blocks" in c.args)
    assert f"Stop and quarantine file {RARE_FILE[0]}" in card.args["blocks"][0]["text"]["text"]
    request_id = int(card.args["blocks"][0]["text"]["text"].split()[0].lstrip("#"))
    await rig.post(rig.click("UBOB", ActionId.APPROVE, request_id))
    assert await rig.stack.wait_for_state(request_id, {"succeeded"}) == "succeeded"
    thread = [c.args["text"] for c in rig.slack.named("chat.postMessage") if c.args.get("thread_ts")]
    assert any(t.startswith(f"Summary of #{request_id}: Succeeded. 2 succeeded, 0 failed") for t in thread)

    machine_id = next(mid for mid, paths in rig.stack.sim.tenant.device_files.items() if COLLECTABLE in paths)
    name = rig.stack.sim.tenant.machines[machine_id]["computerDnsName"]
    await rig.post(rig.command("UALICE", f'collect-file "{COLLECTABLE}" on device:{name} --reason "sample"'))
    second = await rig.slack.wait_for(
        lambda c: c.method == "chat.postMessage" and "blocks" in c.args and "Collect file" in json.dumps(c.args)
    )
    collect_id = int(second.args["blocks"][0]["text"]["text"].split()[0].lstrip("#"))
    await rig.post(rig.click("UBOB", ActionId.APPROVE, collect_id))
    assert await rig.stack.wait_for_state(collect_id, {"succeeded"}) == "succeeded"
    thread = [c.args["text"] for c in rig.slack.named("chat.postMessage") if c.args.get("thread_ts")]
    assert any(t.startswith(f"File collected from {name}. Download it within 30 minutes") for t in thread)


async def test_teams_collect_file_posts_its_link_in_the_thread(teams_rig: TeamsRig) -> None:
    rig = teams_rig
    machine_id = next(mid for mid, paths in rig.stack.sim.tenant.device_files.items() if COLLECTABLE in paths)
    name = rig.stack.sim.tenant.machines[machine_id]["computerDnsName"]
    await rig.post(rig.connector.message("alice", f'collect-file "{COLLECTABLE}" on device:{name} --reason "sample"'))
    request_id, card_post = await rig.card_for_new_request()
    assert card_post.card is not None and "Collect file" in json.dumps(card_post.card)
    await rig.post(rig.connector.execute("bob", cards.VERB_APPROVE, {"request_id": request_id}))
    assert await rig.stack.wait_for_state(request_id, {"succeeded"}) == "succeeded"
    thread = f"{CHANNEL};messageid={card_post.activity_id}"
    texts = [s.text for s in rig.connector.sent if s.conversation_id == thread and s.text]
    assert any(t.startswith(f"File collected from {name}.") and "/_sim/blobs/" in t for t in texts)
