"""The console chat loop: type commands, switch identity with ``/as NAME``, watch cards update.

Console directives (not part of the shared grammar, which every surface shares):
``/as NAME`` switch identity · ``/wait ID [SECONDS]`` wait until a request finishes ·
``/incident FILE`` deliver a saved incident notification · ``/who`` show identity · ``/quit``.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import TextIO

import httpx

from approvals.commands.containment import parse_span
from approvals.commands.models import ParseError
from approvals.identity import Actor, Origin
from approvals.incidents.flows import IncidentFlows
from approvals.incidents.payloads import parse_incident
from approvals.requests.states import RequestState
from approvals.service import ChatOps
from bot.containment_reconcile import Reconciler
from bot.containment_timers import ContainmentTimers
from bot.delivery import Delivery

CHANNEL = "console"
DEMO_USERS = ("alice", "bob", "carol", "dave")


def console_actor(name: str) -> Actor:
    return Actor(platform="console", user_id=name, display_name=name, email=f"{name}@contoso.example")


async def stdin_lines() -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        yield line.rstrip("\n")


async def script_lines(lines: Iterable[str]) -> AsyncIterator[str]:
    for line in lines:
        yield line.rstrip("\n")


class Console:
    def __init__(
        self,
        chatops: ChatOps,
        delivery: Delivery,
        out: TextIO,
        *,
        user: str = "alice",
        echo: bool = False,
        incidents: IncidentFlows | None = None,
        reconciler: Reconciler | None = None,
        sim_url: str | None = None,
    ) -> None:
        self.chatops = chatops
        self.delivery = delivery
        self.incidents = incidents
        self.reconciler = reconciler
        #: the demo's MDE simulator, for /portal (an action made outside the bot)
        self.sim_url = sim_url
        self.out = out
        self.actor = console_actor(user)
        self.echo = echo
        self.origin = Origin(surface="console", channel_id=CHANNEL)
        #: refused or invalid commands (expected in a demo that shows the safety rules)
        self.errors = 0
        #: things that went wrong with the run itself (a /wait that timed out)
        self.failures = 0

    def _print(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    async def run(self, lines: AsyncIterator[str], *, interactive: bool = False) -> int:
        """Returns the number of failures (not refusals: a refused command is the product working)."""
        if interactive:
            self._print(f"mde-chatops console. You are {self.actor.user_id}; try: help · /as bob · /quit")
        async for raw in lines:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if self.echo:
                self._print(f"{self.actor.user_id}> {line}")
            if line in ("/quit", "/exit"):
                break
            await self.one(line)
            await self.drain()
        return self.failures

    async def drain(self) -> None:
        await self.delivery.drain("console")

    async def one(self, line: str) -> None:
        if line.startswith("/"):
            await self._directive(line)
            return
        reply = await self.chatops.handle(self.actor, self.origin, line)
        if reply.error:
            self.errors += 1
        prefix = "✗ " if reply.error else "(only you) " if reply.ephemeral else ""
        self._print(prefix + reply.text)

    async def _directive(self, line: str) -> None:
        try:
            words = shlex.split(line)
        except ValueError as exc:
            self._print(f"✗ {exc}")
            return
        name, args = words[0], words[1:]
        if name == "/as" and len(args) == 1:
            self.actor = console_actor(args[0])
            self._print(f"You are now {args[0]}.")
        elif name == "/who":
            self._print(f"You are {self.actor.user_id}.")
        elif name == "/wait" and args:
            await self._wait(args)
        elif name == "/incident" and len(args) == 1:
            await self._incident(args[0])
        elif name == "/portal" and len(args) in (2, 3) and args[0] in ("isolate", "release"):
            await self._portal(*args)
        elif name == "/reconcile" and not args:
            await self._reconcile()
        elif name == "/advance" and len(args) == 1:
            await self._advance(args[0])
        else:
            self._print(
                "Console directives: /as NAME · /wait ID [SECONDS] · /incident FILE · "
                "/portal isolate|release DEVICE [WHO] · /reconcile · /advance SPAN · /who · /quit"
            )

    async def _portal(self, action: str, device: str, who: str = "analyst@contoso.com") -> None:
        """Someone acts in the Defender portal, outside the bot (the simulator's admin endpoint)."""
        if self.sim_url is None:
            self._print("✗ /portal needs the demo's MDE simulator")
            return
        async with httpx.AsyncClient(timeout=10.0) as http:
            answer = await http.post(
                f"{self.sim_url}/_sim/portal", json={"action": action, "machineId": device, "requestor": who}
            )
        if answer.status_code != 201:
            self.failures += 1
            self._print(f"✗ the portal refused: {answer.json().get('error', answer.text)}")
            return
        self._print(f"(in the Defender portal) {who}: {action} {answer.json()['computerDnsName']}")

    async def _advance(self, span: str) -> None:
        """Run the containment timers (time-boxed releases, reminders) as if ``span`` had passed: a demo
        cannot wait eight hours."""
        try:
            later = parse_span(span, "advance")
        except ParseError as exc:
            self._print(f"✗ {exc.message}")
            return
        timers = ContainmentTimers(self.chatops.db, self.chatops, lambda: self.chatops.clock() + later)
        proposed = await timers.tick()
        self._print(
            f"(the clock runs {span} ahead) "
            + (f"proposed: {', '.join(f'#{p}' for p in proposed)}" if proposed else "nothing due")
        )

    async def _reconcile(self) -> None:
        """Run the periodic reconciliation now instead of at its next interval."""
        if self.reconciler is None:
            self._print("✗ reconciliation is not set up in this console")
            return
        report = await self.reconciler.run_once(force=True)
        if report is None:
            self._print("Reconciliation is running on another replica; try again in a moment.")
            return
        self._print(
            f"Reconciliation read {report.actions} isolate/unisolate action(s) in {report.calls} call(s): "
            f"{len(report.released_outside)} released outside the bot, {len(report.isolated_outside)} isolated "
            "outside the bot."
        )

    async def _incident(self, path: str) -> None:
        """Deliver a saved incident notification as ``POST /api/incidents`` would (rules, war-room thread)."""
        if self.incidents is None:
            self._print("✗ incident notifications are not set up in this console")
            return
        try:
            body = json.loads(await asyncio.to_thread(Path(path).read_text, encoding="utf-8"))
            data = parse_incident(body)
        except (OSError, ValueError) as exc:  # PayloadError is a ValueError
            self.errors += 1
            self._print(f"✗ {path}: {exc}")
            return
        received = await self.incidents.receive(data, body)
        what = (
            "new"
            if received.created
            else ("updated: " + ", ".join(received.changed) if received.changed else "unchanged")
        )
        proposed = ", ".join(f"#{r}" for r in received.requests) or "none"
        self._print(
            f"Incident {data.external_id} received ({what}); "
            f"rules: {', '.join(received.rules) or 'none'}; requests: {proposed}"
        )

    async def _wait(self, args: list[str]) -> None:
        try:
            request_id = int(args[0].lstrip("#"))
            timeout = float(args[1]) if len(args) > 1 else 120.0
        except ValueError:
            self._print("✗ usage: /wait ID [SECONDS]")
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            try:
                view = await self.chatops.view(request_id)
            except KeyError:
                self.failures += 1  # a script that waits for a request expected it to exist
                self._print(f"✗ There is no request #{request_id}.")
                return
            state = RequestState(view.state)
            if state.is_final and (state is not RequestState.CANCELLED or await self._summarized(request_id)):
                await self.drain()
                return
            await asyncio.sleep(0.2)
        self.failures += 1
        self._print(f"✗ request #{request_id} did not finish within {timeout:.0f} s")

    async def _summarized(self, request_id: int) -> bool:
        """A cancelled request is over once the job engine summarized it; one it does not run, at once."""
        from approvals.requests.models import RequestRecord

        async with self.chatops.db.sessions() as session:
            record = await session.get(RequestRecord, request_id)
        return record is not None and (record.summarized_at is not None or not record.verb.runs_jobs)


def script_from_file(path: str) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return handle.read().splitlines()
