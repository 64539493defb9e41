"""``POST /api/messages`` attacked from outside: every case is an activity shaped as Microsoft documents it
(Bot Framework Activity schema, Teams ``channelData``, ``adaptiveCard/action`` invokes), posted over HTTP to
the surface built from settings, as ``mde-chatops serve`` builds it. Each asserts the HTTP answer and that no
request, decision, job or MDE action came of it.

Token shapes: a Teams channel token is issued by ``https://api.botframework.com`` with a ``serviceurl`` claim;
an Entra token for the bot's app id (``aud``) is issued by ``https://login.microsoftonline.com/{tid}/v2.0``
to whatever app asked for it (``azp``) — any app registration in the tenant can ask.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from bot.config import load_settings
from bot.teams import cards
from bot.teams.factory import teams_surface_from_settings
from tests.support.footprint import NOTHING, footprint
from tests.support.mock_connector import TENANT_ID, MockConnector
from tests.support.teams_served import ENTRA_V2, OTHER_APP, Rig, teams_rig

OTHER_TENANT = "99999999-9999-9999-9999-999999999999"
ENTRA_V1 = f"https://sts.windows.net/{TENANT_ID}/"


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with teams_rig() as rig_:
        yield rig_


async def _unchanged(rig: Rig, attack: Callable[[], Awaitable[httpx.Response]], status: int) -> httpx.Response:
    before = await footprint(rig.stack)
    answer = await attack()
    assert answer.status_code == status, answer.text
    await rig.stack.engine.delivery.drain("teams")
    assert await footprint(rig.stack) == before
    return answer


# -- High: an Entra token of any app in the tenant ----------------------------------------------------------
@pytest.mark.parametrize("issuer", [ENTRA_V2, ENTRA_V1])
async def test_another_apps_entra_token_cannot_approve_as_bob(rig: Rig, issuer: str) -> None:
    request_id = await rig.pending_request()
    click = rig.connector.execute("bob", cards.VERB_APPROVE, {"request_id": request_id})
    await _unchanged(rig, lambda: rig.post(click, rig.entra_token(iss=issuer)), 401)
    assert (await rig.stack.record(request_id)).state == "pending"


async def test_another_apps_entra_token_cannot_make_a_request(rig: Rig) -> None:
    command = rig.connector.message("alice", "isolate device:ws-0005 --reason r")
    await _unchanged(rig, lambda: rig.post(command, rig.entra_token()), 401)
    assert await footprint(rig.stack) == NOTHING and rig.connector.sent == []


async def test_an_allowed_callers_token_is_an_app_and_never_an_approver() -> None:
    async with teams_rig(teams_allowed_callers=OTHER_APP) as rig:
        request_id = await rig.pending_request()
        click = rig.connector.execute("bob", cards.VERB_APPROVE, {"request_id": request_id})
        answer = await _unchanged(rig, lambda: rig.post(click, rig.entra_token()), 200)
        assert "an app cannot approve" in answer.json()["value"].lower()
        assert (await rig.stack.record(request_id)).state == "pending"


async def test_an_allowed_caller_from_another_tenant_is_refused() -> None:
    async with teams_rig(teams_allowed_callers=OTHER_APP) as rig:
        token = rig.entra_token(tid=OTHER_TENANT)
        await _unchanged(rig, lambda: rig.post(rig.connector.message("bob", "status"), token), 401)


async def test_an_app_not_on_the_allow_list_is_refused_even_when_one_is_set() -> None:
    async with teams_rig(teams_allowed_callers="some-other-app") as rig:
        request_id = await rig.pending_request()
        click = rig.connector.execute("bob", cards.VERB_APPROVE, {"request_id": request_id})
        await _unchanged(rig, lambda: rig.post(click, rig.entra_token()), 401)


# -- Medium: other Bot Framework channels, tenants, service URLs ---------------------------------------------
@pytest.mark.parametrize("channel", ["webchat", "directline", "emulator"])
async def test_another_bot_framework_channel_cannot_approve(rig: Rig, channel: str) -> None:
    request_id = await rig.pending_request()
    click = rig.connector.execute("bob", cards.VERB_APPROVE, {"request_id": request_id})
    click["channelId"] = channel
    await _unchanged(rig, lambda: rig.post(click, rig.connector.token()), 401)
    assert (await rig.stack.record(request_id)).state == "pending"


async def test_an_activity_that_names_no_tenant_is_refused(rig: Rig) -> None:
    command = rig.connector.message("alice", "isolate device:ws-0005 --reason r")
    command.pop("channelData")
    command["conversation"].pop("tenantId")
    await _unchanged(rig, lambda: rig.post(command, rig.connector.token()), 401)
    assert rig.connector.sent == []


@pytest.mark.parametrize("where", ["channelData", "conversation"])
async def test_an_activity_naming_another_tenant_anywhere_is_refused(rig: Rig, where: str) -> None:
    request_id = await rig.pending_request()
    click = rig.connector.execute("bob", cards.VERB_APPROVE, {"request_id": request_id})
    if where == "channelData":
        click["channelData"] = {"tenant": {"id": OTHER_TENANT}}
    else:
        click["conversation"]["tenantId"] = OTHER_TENANT
    await _unchanged(rig, lambda: rig.post(click, rig.connector.token()), 401)


@pytest.mark.parametrize(
    "service_url",
    [
        "https://webchat.botframework.com/",
        "https://directline.botframework.com/",
        "https://teams.microsoft.com/",
        "https://evil.smba.trafficmanager.net.example.com/",
    ],
)
async def test_a_service_url_that_is_not_teams_is_refused_by_default(service_url: str) -> None:
    async with teams_rig(teams_service_hosts=None) as rig:
        command = rig.connector.message("alice", "isolate device:ws-0005 --reason r")
        command["serviceUrl"] = service_url
        token = rig.connector.token(serviceurl=service_url)
        await _unchanged(rig, lambda: rig.post(command, token), 401)
        assert await footprint(rig.stack) == NOTHING


@pytest.mark.parametrize(
    ("cloud", "host"),
    [
        ("public", "smba.trafficmanager.net"),
        ("gcc", "smba.infra.gcc.teams.microsoft.com"),
        ("gcc_high", "smba.infra.gov.teams.microsoft.us"),
        ("dod", "smba.infra.dod.teams.microsoft.us"),
    ],
)
def test_the_service_url_allow_list_is_the_clouds_teams_host(cloud: str, host: str) -> None:
    settings = load_settings(**MockConnector().settings(teams_cloud=cloud, teams_service_hosts=None))
    surface = teams_surface_from_settings(settings, chatops=None)  # type: ignore[arg-type]
    assert surface.service_hosts == (host,)


async def test_a_us_government_token_is_not_accepted_in_the_public_cloud(rig: Rig) -> None:
    token = rig.connector.token(iss="https://api.botframework.us")
    await _unchanged(
        rig, lambda: rig.post(rig.connector.message("alice", "scan device:ws-0005 --reason r"), token), 401
    )


# -- beyond the issue: replay, other app id, deep nesting -----------------------------------------------------
async def test_a_replayed_approval_decides_once(rig: Rig) -> None:
    request_id = await rig.pending_request()
    click = rig.connector.execute("bob", cards.VERB_APPROVE, {"request_id": request_id})
    token = rig.connector.token()
    first = await rig.post(click, token)
    assert first.status_code == 200 and first.json()["type"] == cards.CARD_CONTENT_TYPE
    after_first = await footprint(rig.stack)
    again = await rig.post(click, token)
    assert again.status_code == 200 and again.json()["type"] == "application/vnd.microsoft.activity.message"
    assert (await footprint(rig.stack)).decisions == after_first.decisions == 1


async def test_a_token_for_another_bot_is_refused(rig: Rig) -> None:
    token = rig.connector.token(aud="another-bot-app-id")
    await _unchanged(
        rig, lambda: rig.post(rig.connector.message("alice", "scan device:ws-0005 --reason r"), token), 401
    )


async def test_a_deeply_nested_activity_is_400_and_reaches_nothing(rig: Rig) -> None:
    command = rig.connector.message("alice", "scan device:ws-0005 --reason r")
    body = json.dumps(command)[:-1] + ', "x": ' + "[" * 5000 + "]" * 5000 + "}"

    async def attack() -> httpx.Response:
        return await rig.http.post(
            rig.url + "/api/messages",
            content=body.encode(),
            headers={"Authorization": f"Bearer {rig.connector.token()}", "Content-Type": "application/json"},
        )

    answer = await _unchanged(rig, attack, 400)
    assert "nested too deeply" in answer.json()["error"]


async def test_a_deeply_nested_body_without_a_token_is_401(rig: Rig) -> None:
    answer = await rig.http.post(rig.url + "/api/messages", content=b"[" * 5000 + b"]" * 5000)
    assert answer.status_code == 401


async def test_an_expired_channel_token_is_refused(rig: Rig) -> None:
    now = int(time.time())
    token = rig.connector.token(exp=now - 600, nbf=now - 7200)
    await _unchanged(
        rig, lambda: rig.post(rig.connector.message("alice", "scan device:ws-0005 --reason r"), token), 401
    )
