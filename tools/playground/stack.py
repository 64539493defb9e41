"""Start the three processes of a Playground session on loopback and stop them again.

* the MDE simulator (``mde-chatops simulator``);
* the bot (``mde-chatops serve``) on SQLite with ``TEAMS_AUTH=playground`` (``bot.teams.playground``);
* the Agents Playground (``@microsoft/m365agentsplayground``, installed in ``tools/playground/node_modules``)
  with its browser launch switched off (``TEAMSAPPTESTER_BROWSER=none``), its server bound to loopback
  (``loopback.cjs``), its telemetry off (``--dt``) and its mocked tenant from ``playground.yml``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PLAYGROUND_CLI = HERE / "node_modules" / "@microsoft" / "m365agentsplayground" / "cli.js"
CONFIG = HERE / "playground.yml"
POLICY = HERE / "policy.yaml"
SIM_TOKEN = "sim-token"
LOOPBACK = "127.0.0.1"
#: what the requester types (the README's example)
COMMAND = 'isolate tag:"Finance Laptops" --reason "INC-1042 ransomware beacon"'


class StackError(Exception):
    """A process did not start; the message says which and where its log is."""


@dataclass(frozen=True)
class Session:
    run_dir: Path
    playground_url: str
    bot_url: str
    simulator_url: str
    tenant: dict[str, Any]

    def user(self, key: str) -> dict[str, str]:
        """``current`` (the browser's user) or the id of one of the other configured users."""
        users: list[dict[str, str]] = self.tenant["users"]
        return dict(self.tenant["currentUser"]) if key == "current" else next(u for u in users if u["id"] == key)

    @property
    def requester_id(self) -> str:
        """The first of the other users (Alice): she asks, the browser's user approves."""
        return str(self.tenant["users"][0]["id"])

    def channel_message(self, user: dict[str, str], text: str) -> dict[str, Any]:
        """A message from ``user`` in the team's first channel, shaped as the Playground itself sends one."""
        team, bot = self.tenant["team"], self.tenant["bot"]
        tenant_id = str(self.tenant["tenantId"])
        channel = team["channels"][0]["id"]
        return {
            "from": {"id": user["id"], "name": user["name"], "aadObjectId": user["aadObjectId"]},
            "text": text,
            "type": "message",
            "channelId": "msteams",
            "serviceUrl": f"{self.playground_url}/_connector",
            "recipient": {"id": bot["id"], "name": bot["name"]},
            "conversation": {"id": channel, "isGroup": True, "conversationType": "channel", "tenantId": tenant_id},
            "channelData": {"tenant": {"id": tenant_id}, "team": {"id": team["id"]}, "channel": {"id": channel}},
        }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StackError(f"{url} did not come up: the process exited ({process.returncode}); see {log}")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (loopback URL built here)
                return
        except OSError:
            time.sleep(0.2)
    raise StackError(f"{url} did not answer within {timeout_s:.0f} s; see {log}")


def _wait_line(pattern: str, log: Path, process: subprocess.Popen[bytes], timeout_s: float) -> re.Match[str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        match = re.search(pattern, text)
        if match:
            return match
        if process.poll() is not None:
            raise StackError(f"the process exited ({process.returncode}) before saying {pattern!r}; see {log}")
        time.sleep(0.2)
    raise StackError(f"no {pattern!r} within {timeout_s:.0f} s; see {log}")


@contextmanager
def _process(argv: list[str], log: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    out: IO[bytes] = log.open("wb")
    process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=log.parent)  # noqa: S603
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        out.close()


def bot_environment(
    *, bot_port: int, sim_url: str, playground_url: str, tenant: dict[str, Any], db: Path
) -> dict[str, str]:
    """``mde-chatops serve`` in ``TEAMS_AUTH=playground`` mode, everything on loopback, SQLite in the run folder."""
    bot = tenant["bot"]
    return {
        "DATABASE_URL": f"sqlite:///{db}",
        "HOST": LOOPBACK,
        "PORT": str(bot_port),
        "MDE_BASE_URL": sim_url,
        "MDE_AUTH": "static",
        "MDE_STATIC_TOKEN": SIM_TOKEN,
        "MDE_TIME_SCALE": "60",
        "POLICY_FILE": str(POLICY),
        "POLL_INTERVAL_S": "0.5",
        "TEAMS_APP_ID": str(bot["id"]).removeprefix("28:"),
        "TEAMS_TENANT_ID": str(tenant["tenantId"]),
        "TEAMS_AUTH": "playground",
        "TEAMS_PLAYGROUND_URL": playground_url,
    }


@contextmanager
def running(run_dir: Path, *, devices: int = 300) -> Iterator[Session]:
    """Simulator, bot and Playground on fresh loopback ports; logs in ``run_dir``; everything stopped on exit."""
    if not PLAYGROUND_CLI.exists():
        raise StackError("the Agents Playground is not installed: run scripts/install-playground")
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in run_dir.glob("bot.db*"):  # the Playground keeps its chats in memory: old requests point nowhere
        stale.unlink()
    tenant = yaml.safe_load(CONFIG.read_text())
    sim_port, bot_port, pg_port = free_port(), free_port(), free_port()
    sim_url = f"http://{LOOPBACK}:{sim_port}"
    bot_url = f"http://{LOOPBACK}:{bot_port}"
    pg_url = f"http://{LOOPBACK}:{pg_port}"
    connector = f"{pg_url}/_connector"
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("TEAMS_", "SLACK_", "MDE_", "DATABASE_"))}
    bin_dir = Path(sys.executable).parent
    with ExitStack() as stack:
        sim_log = run_dir / "simulator.log"
        sim = stack.enter_context(
            _process(
                [str(bin_dir / "mde-chatops"), "simulator", "--port", str(sim_port), "--devices", str(devices),
                 "--time-scale", "60", "--token", SIM_TOKEN],
                sim_log,
                base_env,
            )
        )
        _wait_line(r"MDE simulator at", sim_log, sim, 30)
        bot_log = run_dir / "bot.log"
        env = base_env | bot_environment(
            bot_port=bot_port, sim_url=sim_url, playground_url=connector, tenant=tenant, db=run_dir / "bot.db"
        )
        bot = stack.enter_context(_process([str(bin_dir / "mde-chatops"), "serve"], bot_log, env))
        _wait_http(f"{bot_url}/healthz", bot, bot_log, 60)
        pg_log = run_dir / "playground.log"
        pg_env = base_env | {
            "TEAMSAPPTESTER_BROWSER": "none",  # the CLI's own switch: do not open a browser
            "M365_AGENTS_PLAYGROUND_CONFIG_PATH": str(CONFIG),
            "M365_AGENTS_PLAYGROUND_LOGFILE": str(run_dir / "playground-server.log"),
        }
        playground = stack.enter_context(
            _process(
                ["node", "--require", str(HERE / "loopback.cjs"), str(PLAYGROUND_CLI), "--port", str(pg_port),
                 "--app-endpoint", f"{bot_url}/api/messages", "--channel-id", "msteams",
                 "--service-url", connector, "--disable-telemetry"],
                pg_log,
                pg_env,
            )
        )
        listening = _wait_line(r"Listening on (\d+)", pg_log, playground, 60)
        if int(listening.group(1)) != pg_port:  # it falls back to a random port when its own is taken
            raise StackError(f"the Playground took port {listening.group(1)}, not {pg_port}; try again")
        _wait_http(f"{pg_url}/_debug/ping", playground, pg_log, 30)  # it says "Listening" before reading its config
        yield Session(run_dir=run_dir, playground_url=pg_url, bot_url=bot_url, simulator_url=sim_url, tenant=tenant)
