"""``mde-chatops serve`` as production runs it: a separate process configured by environment variables,
with Slack, Teams and the incident webhook on one port, against the simulator and local chat fakes."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import re
import signal
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from mde.simulator import Simulator, SimulatorConfig
from tests.support.incidents import sentinel_incident
from tests.support.mock_connector import APP_ID, CONNECTOR_TOKEN, TENANT_ID, MockConnector
from tests.support.mock_slack import MockSlack

ROOT = Path(__file__).resolve().parents[2]
SLACK_SECRET = "serve-signing-secret"
INCIDENTS_TOKEN = "serve-incidents-token"
METRICS_TOKEN = "serve-metrics-token"
POLICY = """
defaults:
  requesters: ["slack:UALICE", "email:alice@contoso.com"]
  approvers: ["slack:UBOB", "email:bob@contoso.com"]
"""
RULES = """
rules:
  - name: ransomware
    when: {title_contains: [ransomware]}
    post: [{surface: slack, channel: CSOC}]
    propose: {action: isolate}
"""


@dataclass
class Served:
    url: str
    slack: MockSlack
    connector: MockConnector
    sim: Simulator
    process: asyncio.subprocess.Process


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    slack, connector = MockSlack(), MockConnector()
    await slack.start()
    await connector.start()
    sim = Simulator(SimulatorConfig(devices=50, time_scale=60))
    await sim.start()
    (tmp_path / "policy.yaml").write_text(POLICY)
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "slack-token").write_text("xoxb-from-a-file\n")
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        "MDE_BASE_URL": sim.url,
        "MDE_AUTH": "static",
        "MDE_STATIC_TOKEN": sim.config.token or "sim-token",
        "MDE_TIME_SCALE": "60",
        "POLICY_FILE": str(tmp_path / "policy.yaml"),
        "RULES_FILE": str(tmp_path / "rules.yaml"),
        "PORT": "0",
        "WORKER_ID": "replica-7",
        "LOG_FORMAT": "json",
        "SLACK_BOT_TOKEN": f"file:{tmp_path / 'slack-token'}",
        "SLACK_SIGNING_SECRET": SLACK_SECRET,
        "SLACK_API_URL": slack.url + "/api/",
        "TEAMS_APP_ID": APP_ID,
        "TEAMS_TENANT_ID": TENANT_ID,
        "TEAMS_AUTH": "static",
        "TEAMS_STATIC_TOKEN": CONNECTOR_TOKEN,
        "TEAMS_SERVICE_HOSTS": "127.0.0.1",
        "TEAMS_OPENID_METADATA_URL": connector.metadata_url,
        "INCIDENTS_TOKEN": INCIDENTS_TOKEN,
        "METRICS_TOKEN": METRICS_TOKEN,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "serve", cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    port = None
    log_lines: list[str] = []
    while port is None:
        line = (await asyncio.wait_for(process.stderr.readline(), 60)).decode()
        assert line, f"serve exited: {log_lines}"
        log_lines.append(line)
        found = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        port = int(found.group(1)) if found else None
    try:
        yield Served(f"http://127.0.0.1:{port}", slack, connector, sim, process)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 30)
        await sim.stop()
        await connector.stop()
        await slack.stop()


def _slack_headers(body: str) -> dict[str, str]:
    ts = str(int(time.time()))
    signature = "v0=" + hmac.new(SLACK_SECRET.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }


async def test_one_server_serves_health_slack_teams_incidents_and_metrics(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url, timeout=15) as http:
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/readyz")).json() == {"status": "ready"}

        command = urlencode(
            {
                "team_id": "T1",
                "channel_id": "CSOC",
                "user_id": "UALICE",
                "user_name": "alice",
                "command": "/mde",
                "text": "help",
                "response_url": f"{served.slack.url}/response/1",
                "trigger_id": "t",
            }
        )
        assert (await http.post("/slack/events", content=command, headers=_slack_headers(command))).status_code == 200
        await served.slack.wait_for(lambda c: c.method == "response_url")

        activity = served.connector.message("alice", "help")
        teams = await http.post(
            "/api/messages", json=activity, headers={"Authorization": f"Bearer {served.connector.token()}"}
        )
        assert teams.status_code in (200, 201, 202)
        assert "@mde isolate" in (await served.connector.wait_for(lambda s: s.kind == "reply")).text
        assert (await http.post("/api/messages", json=activity)).status_code == 401

        host = next(iter(served.sim.tenant.machines.values()))
        incident = sentinel_incident(hosts=[(host["computerDnsName"], host["id"])])
        posted = await http.post(
            "/api/incidents", json=incident, headers={"Authorization": f"Bearer {INCIDENTS_TOKEN}"}
        )
        assert posted.status_code == 200 and posted.json()["rules"] == ["ransomware"]
        root = await served.slack.wait_for(
            lambda c: c.method == "chat.postMessage" and "incident" in c.args.get("text", "")
        )
        assert root.args["channel"] == "CSOC"
        # the card follows in the thread only if Slack accepted the root: the bot token (a file: reference) works
        card = await served.slack.wait_for(
            lambda c: c.method == "chat.postMessage" and "Request #" in c.args.get("text", "")
        )
        assert card.args["thread_ts"] == root.result["ts"]
        assert (await http.post("/api/incidents", json=incident)).status_code == 401

        assert (await http.get("/metrics")).status_code == 401
        metrics = (await http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})).text
        assert "mdechatops_incidents" in metrics and "mdechatops_requests" in metrics
        assert posted.headers["X-Request-Id"]


async def test_the_worker_runs_under_worker_id(served: Served, tmp_path: Path) -> None:
    """A stable WORKER_ID is what lets a restarted replica adopt its own claims at once."""
    with sqlite3.connect(tmp_path / "bot.db") as db:
        owners = {row[0] for row in db.execute("SELECT owner FROM workers")}
    assert owners == {"replica-7"}


async def test_sigterm_stops_serve_cleanly(served: Served) -> None:
    served.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(served.process.wait(), 30) == 0
