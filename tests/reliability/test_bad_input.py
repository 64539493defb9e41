"""Hostile and odd input through the real entry points: chat text into ChatOps.handle, names MDE sends back,
oversized targets, and random bodies posted to the Teams and Slack endpoints.

A 5,000-device card within Slack's and Teams' limits is tested in tests/bot/slack and tests/bot/teams;
parser-level fuzzing of the grammar is in tests/approvals/commands (its vocabulary is reused here)."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Coroutine
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlencode

import httpx
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from approvals.outbox.models import Event
from approvals.requests.models import RequestRecord
from approvals.text import neutralize_bidi
from approvals.views import RequestView
from bot.console.render import render_card
from bot.console.surface import ConsoleSurface
from bot.slack.blocks import request_blocks
from bot.slack.enums import ActionId, ModalId
from bot.teams import cards
from tests.support.actors import ALICE, BOB, HERE
from tests.support.grammar import WORDS
from tests.support.slack import SlackRig
from tests.support.stack import Stack
from tests.support.teams import TeamsRig

T = TypeVar("T")


def run_in(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> T:
    """From hypothesis' thread, run one coroutine on the test's loop (where the stack lives)."""
    return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=60)


async def _requests(stack: Stack) -> int:
    async with stack.db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(RequestRecord)) or 0)


# -- OData injection -----------------------------------------------------------------------------------------
INJECTIONS = [
    ('devices tag:"x\' or true"', "machineTags/any(tag: tag eq 'x'' or true')"),
    ('devices tag:"x\') or (1 eq 1"', "machineTags/any(tag: tag eq 'x'') or (1 eq 1')"),
    ("isolate device:\"x' or computerDnsName ne '\" --reason r", "(computerDnsName eq 'x'' or computerDnsName ne ''')"),
]


async def test_odata_injection_through_chat_matches_nothing_and_reaches_mde_escaped() -> None:
    async with Stack.start(devices=100) as stack:
        for command, escaped in INJECTIONS:
            reply = await stack.chatops.handle(ALICE, HERE, command)
            assert reply.error and reply.text.startswith("No device"), reply.text
            assert "Traceback" not in reply.text and "Error" not in reply.text
            filters = [e.query.get("$filter", "") for e in stack.sim.request_log]
            assert any(f == escaped or f.startswith(escaped + " or ") for f in filters), filters
        assert all(e.status != 400 for e in stack.sim.request_log)  # every filter was well-formed OData
        assert await _requests(stack) == 0 and not stack.sim.tenant.actions


# -- names and tags in any script ----------------------------------------------------------------------------
UNICODE_DEVICES = {
    "buchhaltung-müller-01.contoso.local": "Buchhaltung Köln",
    "ПК-Бухгалтерия-02.contoso.local": "Финансы 💰",
    "מחשב-כספים-03.contoso.local": "מחלקת כספים",
    "حاسوب-المحاسبة-04.contoso.local": "قسم المحاسبة",
    "端末-経理-05.contoso.local": "経理部",
    "laptop-😀-06.contoso.local": "Финансы 💰",
    "ws-\u202egpj.exe-07.contoso.local": "מחלקת כספים",  # a right-to-left override inside a name
}


async def _add_unicode_devices(stack: Stack) -> dict[str, str]:
    body = [{"computerDnsName": name, "machineTags": [tag]} for name, tag in UNICODE_DEVICES.items()]
    async with httpx.AsyncClient(base_url=stack.sim.url) as http:
        added = (await http.post("/_sim/machines", json=body)).json()
    return {m["computerDnsName"]: m["id"] for m in added}


async def test_unicode_and_rtl_names_and_tags_resolve_exactly() -> None:
    async with Stack.start(devices=100) as stack:
        ids = await _add_unicode_devices(stack)
        for name in UNICODE_DEVICES:
            reply = await stack.chatops.handle(ALICE, HERE, f'devices device:"{name}"')
            assert not reply.error and "1 device(s)" in reply.text and neutralize_bidi(name) in reply.text, reply.text
        for tag in set(UNICODE_DEVICES.values()):
            reply = await stack.chatops.handle(ALICE, HERE, f'isolate tag:"{tag}" --reason "בדיקה ✓" --dry-run')
            wanted = {n for n, t in UNICODE_DEVICES.items() if t == tag}
            assert not reply.error and f"{len(wanted)} device(s)" in reply.text, reply.text
            assert all(neutralize_bidi(n) in reply.text for n in wanted)
        near = await stack.chatops.handle(ALICE, HERE, 'devices device:"ПК-Бухгалтерия"')  # a prefix is not a match
        assert near.error and ids


async def test_unicode_and_rtl_names_render_in_slack_teams_and_console() -> None:
    console = ConsoleSurface(io.StringIO())
    async with Stack.start(lambda _c: [console], devices=100) as stack:
        await _add_unicode_devices(stack)
        reply = await stack.chatops.handle(ALICE, HERE, 'scan tag:"מחלקת כספים" tag:"Финансы 💰" --reason "حادث ✓"')
        assert not reply.error and reply.request is not None, reply.text
        view: RequestView = reply.request
        names = {n for n, t in UNICODE_DEVICES.items() if t in ("מחלקת כספים", "Финансы 💰")}
        assert {d.name for d in view.devices} == names

        blocks = request_blocks(view)
        slack_text = json.dumps(blocks, ensure_ascii=False)
        assert json.loads(slack_text) == blocks and len(blocks) <= 50
        assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b.get("type") == "section" and "text" in b)
        assert all(neutralize_bidi(n) in slack_text for n in names) and "حادث ✓" in slack_text

        card = cards.request_card(view)
        teams_text = json.dumps(card, ensure_ascii=False)
        assert json.loads(teams_text) == card and len(teams_text.encode()) < 28_000
        assert all(neutralize_bidi(n) in teams_text for n in names)

        text = render_card(view)
        assert all(neutralize_bidi(n) in text for n in names)
        await stack.engine.delivery.drain("console")
        assert any(f"#{view.id}" in line and "laptop-😀-06" in line for line in console.transcript)


# -- a target far over the cap -------------------------------------------------------------------------------
async def test_a_10000_device_target_is_refused_before_any_card_naming_the_cap() -> None:
    started = time.monotonic()
    async with Stack.start(devices=10_000) as stack:
        for machine in stack.sim.tenant.machines.values():
            machine["machineTags"].append("Whole Fleet")
        reply = await stack.chatops.handle(ALICE, HERE, 'isolate tag:"Whole Fleet" --reason "INC-1 everything"')
        assert reply.error and reply.request is None
        assert "the cap for isolate is 500" in reply.text and "max_devices" in reply.text
        async with stack.db.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Event)) == 0  # no card was queued
        assert await _requests(stack) == 0 and not stack.sim.tenant.actions
    assert time.monotonic() - started < 20


# -- fuzz: ChatOps.handle never raises -----------------------------------------------------------------------
VALUES = ["ws-0005", "ws-0007", '"Finance Laptops"', "VIP", "1", "2", "#1", "10.0.0.7", "'", "x' or true", "💰", "‏"]
noise = st.lists(st.sampled_from(WORDS + VALUES), max_size=10).map(" ".join)
commands = st.one_of(noise, st.text(max_size=200), st.tuples(noise, st.text(max_size=40)).map(" ".join))


async def test_any_text_through_chatops_handle_is_a_reply_never_an_exception() -> None:
    async with Stack.start(devices=60) as stack:
        loop = asyncio.get_running_loop()

        @given(st.sampled_from([ALICE, BOB]), commands)
        @settings(max_examples=300, deadline=None)
        def check(actor: Any, text: str) -> None:
            reply = run_in(loop, stack.chatops.handle(actor, HERE, text))
            assert isinstance(reply.text, str) and reply.text.strip(), repr(text)
            assert "Traceback" not in reply.text

        await asyncio.to_thread(check)


# -- fuzz: the HTTP endpoints never answer 500 ---------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
ACTIVITY_KEYS = ["type", "text", "from", "conversation", "entities", "value", "channelData", "recipient", "name", "id"]


async def test_random_teams_activities_with_a_valid_token_never_get_a_500(teams: TeamsRig) -> None:
    loop = asyncio.get_running_loop()
    base = teams.connector.message("alice", "help")

    @given(
        st.one_of(
            json_values,
            st.dictionaries(st.sampled_from(ACTIVITY_KEYS), json_values, max_size=5).map(lambda m: {**base, **m}),
            st.sampled_from(["message", "invoke", "conversationUpdate", "event", "typing", ""]).map(
                lambda kind: {**base, "type": kind, "name": "adaptiveCard/action", "value": {"action": {}}}
            ),
        )
    )
    @settings(max_examples=150, deadline=None)
    def check(body: Any) -> None:
        if isinstance(body, dict):
            body = {**body, "serviceUrl": teams.connector.url}  # past the token's serviceUrl check
        response = run_in(loop, teams.post(body))
        # Bot Framework's convention: an invoke no handler claims is 501 Not Implemented, not a failure
        unclaimed_invoke = response.status_code == 501 and isinstance(body, dict) and body.get("type") == "invoke"
        assert response.status_code < 500 or unclaimed_invoke, (response.status_code, response.text[:300], body)

    await asyncio.to_thread(check)


def _payload(value: dict[str, Any]) -> str:
    return urlencode({"payload": json.dumps(value)})


texts = st.text(max_size=40)
clicks = st.fixed_dictionaries(
    {
        "type": st.just("block_actions"),
        "user": st.fixed_dictionaries({"id": st.sampled_from(["UALICE", "UBOB", "U?"]) | texts}),
        "channel": st.fixed_dictionaries({"id": texts}),
        "message": st.fixed_dictionaries({"ts": texts}),
        "trigger_id": texts,
        "actions": st.lists(
            st.fixed_dictionaries(
                {
                    "action_id": st.sampled_from([*ActionId, "x"]),
                    "block_id": texts,
                    "value": st.sampled_from(["1", "0", "-1", "99999999999999999999"]) | texts,
                }
            ),
            min_size=1,
            max_size=2,
        ),
    }
).map(_payload)
modals = st.fixed_dictionaries(
    {
        "type": st.just("view_submission"),
        "user": st.fixed_dictionaries({"id": st.sampled_from(["UALICE", "UBOB"]) | texts}),
        "view": st.fixed_dictionaries(
            {
                "callback_id": st.sampled_from([*ModalId, "x"]),
                "private_metadata": st.sampled_from(["1", ""]) | texts,
                "state": st.fixed_dictionaries({"values": st.dictionaries(texts, json_values, max_size=3)}),
            }
        ),
    }
).map(_payload)


async def test_random_signed_slack_bodies_never_get_a_500(slack: SlackRig) -> None:
    """Well-formed Slack shapes with random contents; malformed interactive payloads are the xfail below."""
    loop = asyncio.get_running_loop()
    form = st.dictionaries(
        st.sampled_from(["command", "text", "user_id", "channel_id", "team_id", "trigger_id", "type", "token"]),
        texts,
        max_size=6,
    ).map(urlencode)
    slash = st.text(max_size=120).map(lambda text: slack.command(random_user(text), text))

    @given(st.one_of(form, slash, clicks, modals, st.text(max_size=200)))
    @settings(max_examples=200, deadline=None)
    def check(body: str) -> None:
        assume("payload" not in parse_qs(body, keep_blank_values=True))  # only the shapes above
        response = run_in(loop, slack.post(body))
        assert response.status_code < 500, (response.status_code, response.text[:300], body)

    await asyncio.to_thread(check)


def random_user(text: str) -> str:
    return "UALICE" if len(text) % 2 else "UBOB"


MALFORMED_PAYLOADS = ["payload", "payload=%7Bnot+json", "payload=null", "payload=%5B%5D", "payload=7"]


async def test_malformed_slack_interactive_payloads_are_refused_not_a_500(slack: SlackRig) -> None:
    statuses = []
    for body in MALFORMED_PAYLOADS:
        unsigned = await slack.http.post(
            slack.url + "/slack/events", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        statuses.append((body, (await slack.post(body)).status_code, unsigned.status_code))
    signed_bad_shape = await slack.post(_payload({"type": "block_actions", "actions": None}))
    statuses.append(("actions: null", signed_bad_shape.status_code, 0))
    assert all(signed == 400 and unsigned in (0, 401) for _b, signed, unsigned in statuses), statuses


def test_direction_overrides_in_a_name_are_shown_not_obeyed() -> None:
    from approvals.text import device_line
    from tests.support.views import huge_view

    spoof = "invoice\u202egpj.exe"
    assert neutralize_bidi(spoof) == "invoice⟦U+202E⟧gpj.exe"
    assert neutralize_bidi("מחלקת כספים") == "מחלקת כספים"  # right-to-left text itself is left alone
    view = huge_view(state="pending", name_suffix="\u202egpj.exe", devices=3)
    for rendered in (json.dumps(request_blocks(view)), json.dumps(cards.request_card(view)), render_card(view)):
        assert "\u202e" not in rendered and "\\u202e" not in rendered and "U+202E" in rendered
    assert "\u202e" not in device_line(spoof, "Windows11", "Active")
