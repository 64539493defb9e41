"""Every HTTP request gets an id that is echoed back and put on each log line; secrets never reach a line."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import httpx
from aiohttp import web

from bot.logging import JsonFormatter, RedactingFilter, RequestIdFilter
from bot.server import build_app, start_site
from tests.support.databases import database

log = logging.getLogger("tests.request_ids")


class _Route:
    def register_routes(self, app: web.Application) -> None:
        async def hello(request: web.Request) -> web.Response:
            log.warning("handling with Authorization Bearer eyJhbGciOi.secret-token and xoxb-123-456")
            return web.json_response({"ok": True})

        app.router.add_get("/hello", hello)


async def test_request_ids_are_logged_and_echoed_and_secrets_redacted(tmp_path: Path) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    log.addHandler(handler)
    try:
        async with database("sqlite", tmp_path) as db:
            runner, port = await start_site(build_app(db, [_Route()]), "127.0.0.1", 0)
            try:
                async with httpx.AsyncClient() as http:
                    mine = await http.get(f"http://127.0.0.1:{port}/hello", headers={"X-Request-Id": "abc123-from-lb"})
                    fresh = await http.get(f"http://127.0.0.1:{port}/hello", headers={"X-Request-Id": "bad id!"})
            finally:
                await runner.cleanup()
    finally:
        log.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert mine.headers["X-Request-Id"] == "abc123-from-lb" and lines[0]["request_id"] == "abc123-from-lb"
    assert len(fresh.headers["X-Request-Id"]) == 32 and lines[1]["request_id"] == fresh.headers["X-Request-Id"]
    assert "secret-token" not in stream.getvalue() and "xoxb-123" not in stream.getvalue()
    assert "[redacted]" in lines[0]["message"]
