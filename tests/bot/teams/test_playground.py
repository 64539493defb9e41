"""``TEAMS_AUTH=playground`` (Microsoft 365 Agents Playground, development only): it takes activities with no
token, so it must be impossible to enable anywhere but on loopback, must accept nothing but the Playground's
own connector, and its users must never be real Teams principals. Activities are posted over HTTP to the
surface built from settings, as ``mde-chatops serve`` builds it; the local Bot Connector stands in for the
Playground's mocked connector."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from approvals.policy import Policy
from bot.config import Settings, SettingsError, load_settings
from bot.teams import cards
from bot.teams.factory import teams_surface_from_settings
from bot.teams.playground import CONNECTOR_TOKEN
from tests.support.footprint import NOTHING, footprint
from tests.support.mock_connector import APP_ID, TENANT_ID, MockConnector
from tests.support.stack import served_from_settings
from tests.support.teams_served import Rig, teams_rig

#: what a real deployment's policy names: Bob by his Entra object id and his e-mail
REAL_POLICY = Policy.from_dict(
    {"defaults": {"requesters": ["*"], "approvers": ["teams:aad-bob", "email:bob@contoso.com"]}}
)
PLAYGROUND_POLICY = Policy.from_dict(
    {"defaults": {"requesters": ["playground:aad-alice"], "approvers": ["playground:aad-bob"]}}
)


def playground_settings(connector_url: str, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "mde_base_url": "http://127.0.0.1:8765",
        "mde_auth": "static",
        "mde_static_token": "t",
        "teams_app_id": APP_ID,
        "teams_tenant_id": TENANT_ID,
        "teams_auth": "playground",
        "teams_playground_url": connector_url,
    }
    values.update(overrides)
    return values


# -- it cannot be enabled anywhere but on loopback ------------------------------------------------------------
@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "localhost", "bot.example.com", ""])
def test_playground_mode_is_refused_unless_the_server_listens_on_loopback(host: str) -> None:
    with pytest.raises(SettingsError, match="TEAMS_AUTH=playground needs HOST to be a loopback IP"):
        load_settings(**playground_settings("http://127.0.0.1:56150/_connector", host=host))


@pytest.mark.parametrize(
    "url",
    [
        "https://smba.trafficmanager.net/teams/",
        "http://10.1.2.3:56150/_connector",
        "http://localhost:56150/_connector",
        "http://user@127.0.0.1:56150/_connector",
        "file:///tmp/connector",
    ],
)
def test_playground_mode_is_refused_unless_replies_go_to_a_loopback_connector(url: str) -> None:
    with pytest.raises(SettingsError, match="TEAMS_PLAYGROUND_URL to be the Playground's connector on loopback"):
        load_settings(**playground_settings(url))


@pytest.mark.parametrize("mde", [None, "https://api.security.microsoft.com", "http://10.0.0.5:8765"])
def test_playground_mode_is_refused_against_anything_but_a_loopback_mde(mde: str | None) -> None:
    with pytest.raises(SettingsError, match="MDE_BASE_URL to be the MDE simulator on loopback"):
        load_settings(**playground_settings("http://127.0.0.1:56150/_connector", mde_base_url=mde))


def test_playground_mode_needs_the_playground_url() -> None:
    with pytest.raises(SettingsError, match="TEAMS_AUTH=playground needs TEAMS_PLAYGROUND_URL"):
        load_settings(**playground_settings("", teams_playground_url=None))


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1"])
def test_playground_mode_on_loopback_is_accepted(host: str) -> None:
    settings = load_settings(**playground_settings("http://[::1]:56150/_connector", host=host))
    assert settings.teams_auth == "playground"


def test_settings_that_skipped_validation_still_cannot_build_a_playground_surface() -> None:
    settings = Settings.model_construct(**playground_settings("http://127.0.0.1:1/_connector", host="0.0.0.0"))
    with pytest.raises(ValueError, match="needs HOST to be a loopback IP"):
        teams_surface_from_settings(settings, chatops=None)  # type: ignore[arg-type]


async def test_serve_refuses_to_start_in_playground_mode_on_all_interfaces(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEAMS_", "MDE_", "SLACK_", "HOST", "PORT"))}
    env.update({k.upper(): str(v) for k, v in playground_settings("http://127.0.0.1:1/_connector").items()})
    env.update(HOST="0.0.0.0", PORT="0", DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "serve", cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode != 0
    assert "TEAMS_AUTH=playground needs HOST to be a loopback IP (127.0.0.1 or ::1), not '0.0.0.0'" in stderr.decode()
    assert "Traceback" not in stderr.decode() and not (tmp_path / "bot.db").exists()


# -- on loopback: only the Playground's connector, and only as playground: principals -------------------------
class PlaygroundRig(Rig):
    """The security tests' rig, posting as the Playground does: no Authorization header at all."""

    async def send(self, activity: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.http.post(self.url + "/api/messages", json=activity, headers=headers or {})

    async def request_by_alice(self) -> int:
        answer = await self.send(self.connector.message("alice", "scan device:ws-0005 --reason r"))
        assert answer.status_code in (200, 201, 202), answer.text
        request_id, _sent = await self.connector.new_request_card()
        await self.stack.wait_for_state(request_id, {"pending"})
        return request_id


@asynccontextmanager
async def playground_rig(policy: Policy, **overrides: Any) -> AsyncIterator[PlaygroundRig]:
    connector = MockConnector(accepted_token=CONNECTOR_TOKEN)
    await connector.start()

    try:
        async with served_from_settings(playground_settings(connector.url, **overrides), policy=policy) as running:
            yield PlaygroundRig(running[0], connector, running[1], running[2])
    finally:
        await connector.stop()


async def test_the_playground_speaks_without_a_token_as_playground_principals() -> None:
    async with playground_rig(PLAYGROUND_POLICY) as rig:
        request_id = await rig.request_by_alice()
        record = await rig.stack.record(request_id)
        assert record.requester_key == "playground:aad-alice" and record.requester_email is None
        click = rig.connector.execute("bob", cards.VERB_APPROVE, {"request_id": request_id})
        answer = await rig.send(click)
        assert answer.status_code == 200 and answer.json()["type"] == cards.CARD_CONTENT_TYPE
        assert await rig.stack.wait_for_state(request_id, {"succeeded"}) == "succeeded"
        assert rig.connector.unauthorized_calls == 0


async def test_playground_users_are_never_the_real_teams_users_a_policy_names() -> None:
    """The Playground's Bob carries real Bob's Entra object id: he still is not the teams: principal."""
    async with playground_rig(REAL_POLICY) as rig:
        request_id = await rig.request_by_alice()
        before = await footprint(rig.stack)
        answer = await rig.send(rig.connector.execute("bob", cards.VERB_APPROVE, {"request_id": request_id}))
        assert answer.status_code == 200
        refusal = answer.json()
        assert refusal["type"] == "application/vnd.microsoft.activity.message"
        assert "playground:aad-bob" in refusal["value"]
        assert await footprint(rig.stack) == before and (await rig.stack.record(request_id)).state == "pending"


async def test_a_request_carrying_a_token_is_not_the_playground() -> None:
    async with playground_rig(PLAYGROUND_POLICY) as rig:
        command = rig.connector.message("alice", "scan device:ws-0005 --reason r")
        answer = await rig.post(command, rig.connector.token())
        assert answer.status_code == 401
        assert await footprint(rig.stack) == NOTHING and rig.connector.sent == []


@pytest.mark.parametrize(
    "service_url", ["https://smba.trafficmanager.net/teams/", "http://127.0.0.1:1/_connector", "http://127.0.0.1"]
)
async def test_an_activity_for_another_connector_is_refused(service_url: str) -> None:
    async with playground_rig(PLAYGROUND_POLICY) as rig:
        request_id = await rig.request_by_alice()
        before = await footprint(rig.stack)
        click = rig.connector.execute("bob", cards.VERB_APPROVE, {"request_id": request_id})
        click["serviceUrl"] = service_url
        assert (await rig.send(click)).status_code == 401
        assert await footprint(rig.stack) == before and (await rig.stack.record(request_id)).state == "pending"


async def test_another_tenant_is_refused_in_playground_mode_too() -> None:
    async with playground_rig(PLAYGROUND_POLICY) as rig:
        command = rig.connector.message("alice", "scan device:ws-0005 --reason r")
        command["channelData"] = {"tenant": {"id": "99999999-9999-9999-9999-999999999999"}}
        assert (await rig.send(command)).status_code == 401
        assert await footprint(rig.stack) == NOTHING


async def test_playground_mode_says_so_loudly_at_start(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bot.teams.playground")
    async with playground_rig(PLAYGROUND_POLICY):
        pass
    assert any("DEVELOPMENT ONLY" in r.getMessage() and "WITHOUT any token" in r.getMessage() for r in caplog.records)


async def test_without_playground_mode_the_playground_is_refused() -> None:
    """The Playground's own marker header opens nothing: a bot with real Teams auth wants a token."""
    async with teams_rig() as rig:
        command = rig.connector.message("alice", "scan device:ws-0005 --reason r")
        answer = await PlaygroundRig.send(rig, command, {"x-ms-agents-playground": "true"})
        assert answer.status_code == 401
        assert await footprint(rig.stack) == NOTHING
