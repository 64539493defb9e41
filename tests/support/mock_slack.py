"""A local Slack Web API that records every call and answers like Slack (pattern of bolt's own tests)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from tests.support.loopback import serve

USERS = {
    "UALICE": {"name": "alice", "email": "alice@contoso.com"},
    "UBOB": {"name": "bob", "email": "bob@contoso.com"},
    "UCAROL": {"name": "carol", "email": "carol@contoso.com"},
}


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    #: what the mock answered (chat.postMessage: the message ts)
    result: dict[str, Any] = field(default_factory=dict)


@dataclass
class MockSlack:
    calls: list[Call] = field(default_factory=list)
    url: str = ""
    down: bool = False
    _runner: web.AppRunner | None = None
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_post("/response/{id}", self._response_url)
        self._runner, self.url = await serve(app)
        return self.url

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    def named(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait_for(self, predicate: Any, timeout: float = 30.0) -> Call:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for call in self.calls:
                if predicate(call):
                    return call
            if loop.time() > deadline:
                raise AssertionError(f"no matching Slack call; saw {[c.method for c in self.calls]}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 0.2)

    def _record(self, method: str, args: dict[str, Any]) -> None:
        self.calls.append(Call(method, args))
        self._changed.set()

    async def _args(self, request: web.Request) -> dict[str, Any]:
        if request.method == "GET":
            return dict(request.query)
        raw = await request.read()
        if request.content_type == "application/json":
            body: dict[str, Any] = json.loads(raw or b"{}")
            return body
        return dict(parse_qsl(raw.decode()))

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await self._args(request)
        for key in ("blocks", "view", "files"):
            if isinstance(args.get(key), str):
                args[key] = json.loads(args[key])
        if self.down and method.startswith("chat."):
            return web.json_response({"ok": False, "error": "service_unavailable"}, status=503)
        self._record(method, args)
        if not request.headers.get("Authorization", "").startswith("Bearer xoxb-"):
            return web.json_response({"ok": False, "error": "not_authed"})
        if method == "auth.test":
            return web.json_response(
                {"ok": True, "user_id": "UBOT", "bot_id": "BBOT", "team_id": "T1", "url": "https://example.slack.com/"}
            )
        if method == "users.info":
            user = USERS.get(args.get("user", ""), {"name": args.get("user"), "email": None})
            return web.json_response(
                {
                    "ok": True,
                    "user": {"id": args.get("user"), "name": user["name"], "profile": {"email": user["email"]}},
                }
            )
        if method == "usergroups.list":
            return web.json_response({"ok": True, "usergroups": [{"id": "S0SOC", "users": ["UBOB", "UCAROL"]}]})
        if method in ("chat.postMessage", "chat.update"):
            ts = args.get("ts") or f"1700000000.{next(self._ts):06d}"
            self.calls[-1].result = {"ts": ts}
            return web.json_response({"ok": True, "channel": args.get("channel"), "ts": ts})
        if method == "files.getUploadURLExternal":
            return web.json_response(
                {"ok": True, "upload_url": f"{self.url}/upload/F{len(self.calls)}", "file_id": f"F{len(self.calls)}"}
            )
        if method == "files.completeUploadExternal":
            files = args.get("files") or []
            return web.json_response(
                {"ok": True, "files": [{"id": f.get("id"), "title": f.get("title")} for f in files]}
            )
        return web.json_response({"ok": True})

    async def _upload(self, request: web.Request) -> web.Response:
        self._record("upload", {"file_id": request.match_info["file_id"], "bytes": await request.read()})
        return web.Response(text="OK")

    async def _response_url(self, request: web.Request) -> web.Response:
        self._record("response_url", json.loads(await request.read()))
        return web.Response(text="ok")
