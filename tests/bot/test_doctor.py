"""``mde-chatops doctor``: one line per check, each failure named with its fix, exit 1, never a traceback.

The MDE simulator accepts exactly the token the test hands the doctor (a JWT signed with a throwaway key),
so the roles the doctor reads from the token are the roles the simulator enforces.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import jwt
import pytest

from approvals.migrate import upgrade_async
from approvals.policy import Policy
from bot.config import Settings, load_settings
from bot.doctor import doctor_report, render, run_checks
from mde.auth import StaticTokenProvider
from mde.simulator import Simulator, SimulatorConfig
from tests.support.databases import postgres_url
from tests.support.mock_slack import MockSlack

ROOT = Path(__file__).parents[2]
THROWAWAY_KEY = "a-key-made-up-for-this-test-only-32b"
ALL_ROLES = (
    "Machine.Read.All",
    "Machine.ReadWrite.All",
    "Machine.Isolate",
    "Machine.Scan",
    "Machine.RestrictExecution",
    "Machine.CollectForensics",
    "Ti.ReadWrite",
    "Machine.StopAndQuarantine",
    "Machine.LiveResponse",
    "File.Read.All",
    "Alert.Read.All",
    "User.Read.All",
)
GRAPH = "https://graph.microsoft.com"
POLICY = "defaults:\n  requesters: ['*']\n  approvers: ['*']\n"


def make_token(roles: tuple[str, ...], aud: str = "https://api.securitycenter.microsoft.com") -> str:
    claims = {"aud": aud, "roles": list(roles), "exp": int(time.time()) + 3600, "tid": "tenant"}
    return jwt.encode(claims, THROWAWAY_KEY, algorithm="HS256")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting leaks in from the machine running the tests (environment or a .env file)."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
async def slack() -> AsyncIterator[MockSlack]:
    mock = MockSlack()
    await mock.start()
    yield mock
    await mock.stop()


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    await upgrade_async(url)
    return url


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY, encoding="utf-8")
    return path


def graph_token(roles: tuple[str, ...] = ("ThreatHunting.Read.All",), aud: str = GRAPH) -> str:
    return make_token(roles, aud=aud)


def settings_for(sim: Simulator, database_url: str, policy_file: Path, slack: MockSlack, **extra: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "mde_auth": "static",
        "mde_static_token": sim.config.token,
        "graph_static_token": graph_token(),
        "mde_base_url": sim.url,
        "policy_file": policy_file,
        "slack_bot_token": "xoxb-test",
        "slack_signing_secret": "signing-secret",
        "slack_api_url": slack.url + "/api/",
    }
    return load_settings(**{**values, **extra})


def lines_of(report: str) -> dict[str, str]:
    """check name -> its verdict (``ok …`` or ``FAIL: …``); the last line is the summary."""
    *checks, _summary = report.splitlines()
    return dict(line.split(": ", 1) for line in checks)


@asynccontextmanager
async def simulator(token: str, roles: tuple[str, ...] = ALL_ROLES) -> AsyncIterator[Simulator]:
    async with Simulator(SimulatorConfig(devices=20, token=token, roles=frozenset(roles))) as sim:
        yield sim


async def test_a_healthy_deployment_passes_every_check(sqlite_url: str, policy_file: Path, slack: MockSlack) -> None:
    token = make_token(ALL_ROLES)
    async with simulator(token) as sim:
        report = await doctor_report(settings_for(sim, sqlite_url, policy_file, slack))
    verdicts = lines_of(report)
    assert all(v.startswith("ok") for v in verdicts.values()), report
    assert report.splitlines()[-1] == f"all {len(verdicts)} checks passed"
    assert {"settings", "policy", "database", "database schema", "mde token", "mde api", "slack"} <= set(verdicts)
    assert "mde permission Machine.Isolate (isolate, unisolate)" in verdicts
    assert "mde permission Ti.ReadWrite or Ti.ReadWrite.All (block, unblock)" in verdicts
    assert "mde permission Machine.StopAndQuarantine (quarantine)" in verdicts
    assert "mde permission Machine.LiveResponse (collect-file)" in verdicts
    assert token not in report and "xoxb-test" not in report
    assert [c.method for c in slack.calls] == ["auth.test"]


async def test_a_token_without_machine_isolate_is_named(sqlite_url: str, policy_file: Path, slack: MockSlack) -> None:
    roles = tuple(r for r in ALL_ROLES if r != "Machine.Isolate")
    token = make_token(roles)
    async with simulator(token, roles) as sim:
        settings = settings_for(sim, sqlite_url, policy_file, slack, mde_static_token="not-the-token")
        checks = await run_checks(settings, token_provider=StaticTokenProvider(token))
    failed = [c for c in checks if not c.ok]
    assert [c.name for c in failed] == ["mde permission Machine.Isolate (isolate, unisolate)"]
    assert "lack Machine.Isolate" in failed[0].detail and "admin consent" in failed[0].detail
    assert failed[0].line().startswith("mde permission Machine.Isolate (isolate, unisolate): FAIL: ")


async def test_only_the_verbs_the_policy_enables_need_their_permission(
    sqlite_url: str, policy_file: Path, slack: MockSlack
) -> None:
    roles = ("Machine.Read.All", "Machine.Scan")
    token = make_token(roles)
    scan_only = Policy.from_dict({"actions": {"scan": {"requesters": ["*"], "approvers": ["*"]}}}, name="scan only")
    async with simulator(token, roles) as sim:
        checks = await run_checks(settings_for(sim, sqlite_url, policy_file, slack), policy=scan_only)
    assert all(c.ok for c in checks), [c.line() for c in checks if not c.ok]
    assert "mde permission Machine.Scan (scan)" in {c.name for c in checks}


async def test_a_token_for_another_api_and_a_403_are_explained(
    sqlite_url: str, policy_file: Path, slack: MockSlack
) -> None:
    token = make_token(("Machine.Isolate",), aud="https://api.security.microsoft.com")
    async with simulator(token, ("Machine.Isolate",)) as sim:
        verdicts = lines_of(await doctor_report(settings_for(sim, sqlite_url, policy_file, slack)))
    assert "MDE_SCOPE=https://api.securitycenter.microsoft.com/.default" in verdicts["mde token audience"]
    assert (
        "lack Machine.Read.All"
        in verdicts["mde permission Machine.Read.All or Machine.ReadWrite.All (device lookups, action status)"]
    )
    assert verdicts["mde api"].startswith("FAIL: ") and "403" in verdicts["mde api"]
    assert "Machine.Read.All" in verdicts["mde api"]


async def test_a_graph_token_without_threat_hunting_read_all_is_named(
    sqlite_url: str, policy_file: Path, slack: MockSlack
) -> None:
    async with simulator(make_token(ALL_ROLES)) as sim:
        settings = settings_for(sim, sqlite_url, policy_file, slack, graph_static_token=graph_token(("User.Read.All",)))
        checks = await run_checks(settings)
    failed = [c for c in checks if not c.ok]
    assert [c.name for c in failed] == ["graph permission ThreatHunting.Read.All (query targets, schedules)"]
    assert "lack ThreatHunting.Read.All" in failed[0].detail and "Microsoft Graph" in failed[0].detail


async def test_an_mde_token_used_for_graph_is_explained(sqlite_url: str, policy_file: Path, slack: MockSlack) -> None:
    """Without a Graph token of its own, the MDE one is no use for hunting: the doctor says which scope to ask."""
    token = make_token(ALL_ROLES)
    async with simulator(token) as sim:
        verdicts = lines_of(
            await doctor_report(settings_for(sim, sqlite_url, policy_file, slack, graph_static_token=token))
        )
    assert f"GRAPH_SCOPE={GRAPH}/.default" in verdicts["graph token audience"]
    assert (
        "lack ThreatHunting.Read.All" in verdicts["graph permission ThreatHunting.Read.All (query targets, schedules)"]
    )


async def test_hunting_api_mde_checks_advanced_query_and_warns_of_the_retirement(
    sqlite_url: str, policy_file: Path, slack: MockSlack
) -> None:
    token = make_token(ALL_ROLES)
    async with simulator(token) as sim:
        verdicts = lines_of(await doctor_report(settings_for(sim, sqlite_url, policy_file, slack, hunting_api="mde")))
    assert "lack AdvancedQuery.Read.All" in verdicts["mde permission AdvancedQuery.Read.All (query targets, schedules)"]
    assert "MC1220762" in verdicts["hunting api"] and "graph token" not in verdicts


async def test_a_postgres_schema_behind_the_code_says_run_db_upgrade(policy_file: Path, slack: MockSlack) -> None:
    token = make_token(ALL_ROLES)
    async with postgres_url() as url, simulator(token) as sim:
        before = lines_of(await doctor_report(settings_for(sim, url, policy_file, slack)))
        await upgrade_async(url)
        after = lines_of(await doctor_report(settings_for(sim, url, policy_file, slack)))
    assert before["database"].startswith("ok")
    assert before["database schema"].startswith("FAIL: ") and "`mde-chatops db upgrade`" in before["database schema"]
    assert after["database schema"].startswith("ok")


async def test_teams_settings_name_what_is_missing(sqlite_url: str, policy_file: Path) -> None:
    base = load_settings(
        database_url=sqlite_url,
        mde_auth="static",
        mde_static_token="t",
        mde_base_url="http://127.0.0.1:1",  # nothing listens there; only loopback is ever contacted
        policy_file=policy_file,
    )
    teams = base.model_copy(update={"teams_app_id": "app-id", "teams_tenant_id": None, "teams_client_secret": None})
    checks = await run_checks(teams, token_provider=StaticTokenProvider("t"), timeout_s=2)
    teams_line = next(c for c in checks if c.name == "teams")
    assert not teams_line.ok and "TEAMS_TENANT_ID" in teams_line.detail and "TEAMS_CLIENT_SECRET" in teams_line.detail


async def test_playground_mode_fails_the_teams_check(sqlite_url: str, policy_file: Path) -> None:
    settings = load_settings(
        database_url=sqlite_url,
        mde_auth="static",
        mde_static_token="t",
        mde_base_url="http://127.0.0.1:1",
        policy_file=policy_file,
        teams_app_id="app-id",
        teams_tenant_id="tenant",
        teams_auth="playground",
        teams_playground_url="http://127.0.0.1:2/_connector",
    )
    checks = await run_checks(settings, token_provider=StaticTokenProvider("t"), timeout_s=2)
    teams_line = next(c for c in checks if c.name == "teams")
    assert not teams_line.ok and "development only" in teams_line.detail


# -- the command line --------------------------------------------------------------------------------------
def cli_env(**values: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    return {**keep, **values}


async def run_cli(env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "doctor",
        cwd=cwd,
        env={**env, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_cli_exits_0_when_every_check_passes(
    sqlite_url: str, policy_file: Path, slack: MockSlack, tmp_path: Path
) -> None:
    token = make_token(ALL_ROLES)
    (tmp_path / "mde-token").write_text(token)  # a mounted secret: the doctor reads it like serve does
    async with simulator(token) as sim:
        env = cli_env(
            DATABASE_URL=sqlite_url,
            MDE_AUTH="static",
            MDE_STATIC_TOKEN=f"file:{tmp_path / 'mde-token'}",
            MDE_BASE_URL=sim.url,
            GRAPH_STATIC_TOKEN=graph_token(),
            POLICY_FILE=str(policy_file),
            SLACK_BOT_TOKEN="xoxb-test",
            SLACK_SIGNING_SECRET="signing-secret",
            SLACK_API_URL=slack.url + "/api/",
        )
        code, out, err = await run_cli(env, tmp_path)
    assert code == 0, out + err
    assert "FAIL" not in out and out.strip().endswith("checks passed")
    assert token not in out + err


async def test_the_cli_reports_every_failure_without_a_traceback(tmp_path: Path) -> None:
    env = cli_env(
        DATABASE_URL="postgresql://nobody@127.0.0.1:1/none",
        MDE_AUTH="static",
        MDE_STATIC_TOKEN="secret-static-token",
        MDE_BASE_URL="http://127.0.0.1:1",
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_SIGNING_SECRET="signing-secret",
        SLACK_API_URL="http://127.0.0.1:1/api/",
    )
    code, out, err = await run_cli(env, tmp_path)
    assert code == 1
    assert "Traceback" not in out + err and "secret-static-token" not in out + err
    verdicts = lines_of(out)
    assert verdicts["database"].startswith("FAIL: cannot reach postgresql+asyncpg://nobody@127.0.0.1:1/none")
    assert verdicts["mde api"].startswith("FAIL: cannot use MDE at http://127.0.0.1:1")
    assert verdicts["slack"].startswith("FAIL: cannot reach Slack")
    assert verdicts["policy"].startswith("FAIL: POLICY_FILE is not set")


async def test_invalid_settings_are_one_line_and_exit_1(tmp_path: Path) -> None:
    code, out, err = await run_cli(cli_env(MDE_AUTH="client_secret"), tmp_path)
    assert code == 1 and "Traceback" not in out + err
    assert out.splitlines()[0].startswith("settings: FAIL: Invalid settings:")
    assert "MDE_TENANT_ID" in out.splitlines()[0]


async def test_block_needs_an_indicator_permission_and_user_targets_are_optional(
    sqlite_url: str, policy_file: Path, slack: MockSlack
) -> None:
    roles = ("Machine.Read.All", "AdvancedQuery.Read.All", "Ti.ReadWrite.All")
    token = make_token(roles)
    block_only = Policy.from_dict({"actions": {"block": {"requesters": ["*"], "approvers": ["*"]}}}, name="block")
    async with simulator(token, roles) as sim:
        checks = await run_checks(settings_for(sim, sqlite_url, policy_file, slack), policy=block_only)
    verdicts = {c.name: c for c in checks}
    assert verdicts["mde permission Ti.ReadWrite or Ti.ReadWrite.All (block, unblock)"].ok
    optional = verdicts["mde permission User.Read.All (last logon of user targets)"]
    assert optional.ok and optional.detail == "not granted, so user: targets are refused"
    assert verdicts["mde permission File.Read.All (how common a file is)"].detail.startswith("not granted")
    assert all(c.ok for c in checks), [c.line() for c in checks if not c.ok]


# -- Alert.Read.All: optional, riskiest first falls back to risk score without it --------------------------
ALERTS = "mde permission Alert.Read.All (riskiest first)"


async def test_alert_read_all_granted_is_proven_by_mde_answering_the_alerts_listing(
    sqlite_url: str, policy_file: Path, slack: MockSlack
) -> None:
    token = make_token(ALL_ROLES)
    async with simulator(token) as sim:
        report = await doctor_report(settings_for(sim, sqlite_url, policy_file, slack))
    assert lines_of(report)[ALERTS] == "ok (GET /api/alerts answered)"
    assert report.splitlines()[-1].endswith("checks passed")


async def test_alert_read_all_refused_by_mde_is_a_warning_that_says_what_to_grant(
    sqlite_url: str, policy_file: Path, slack: MockSlack
) -> None:
    """A static token that is not a JWT has no roles to read: MDE's 403 on the listing is what tells."""
    roles = tuple(r for r in ALL_ROLES if r != "Alert.Read.All")
    async with simulator("an-opaque-static-token", roles) as sim:
        settings = settings_for(sim, sqlite_url, policy_file, slack)
        checks = await run_checks(settings)
    alerts = next(c for c in checks if c.name == ALERTS)
    assert alerts.ok and alerts.warning, alerts.line()
    assert alerts.line().startswith(f"{ALERTS}: WARN: not granted, so a request of more than 100 devices is ordered")
    assert "MDE risk score only" in alerts.detail
    assert "Alert.Read.All under API permissions → WindowsDefenderATP" in alerts.detail
    assert "admin consent" in alerts.detail
    assert all(c.ok for c in checks), [c.line() for c in checks if not c.ok]
    assert render(checks).splitlines()[-1] == f"all {len(checks)} checks passed, 1 with a warning"


async def test_a_token_whose_roles_lack_alert_read_all_warns_and_fails_nothing(
    sqlite_url: str, policy_file: Path, slack: MockSlack
) -> None:
    """The roles claim decides, whatever MDE would grant: the token the bot sends is the one that counts."""
    token = make_token(tuple(r for r in ALL_ROLES if r != "Alert.Read.All"))
    async with simulator(token) as sim:  # the simulator would grant it: only the token's roles lack it
        settings = settings_for(sim, sqlite_url, policy_file, slack, mde_static_token="not-the-token")
        checks = await run_checks(settings, token_provider=StaticTokenProvider(token))
    alerts = next(c for c in checks if c.name == ALERTS)
    assert alerts.ok and alerts.warning and "risk score only" in alerts.detail, alerts.line()
    assert "WindowsDefenderATP" in alerts.detail and "Alert.Read.All" in alerts.detail
    assert [c.name for c in checks if not c.ok or c.warning] == [ALERTS]
