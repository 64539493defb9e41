"""The one aiohttp web server: health, readiness, and every surface's routes."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web
from sqlalchemy import text

from approvals.db import Database
from bot.logging import request_id
from bot.metrics import Metrics, register_metrics_route

MAX_BODY = 1024 * 1024  # Slack, Teams and webhooks send far less; larger bodies get 413


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


@web.middleware
async def request_ids(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every request gets an id (the caller's X-Request-Id when it looks like one), logged and echoed back."""
    given = request.headers.get("X-Request-Id", "")
    rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
    token = request_id.set(rid)
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:
        exc.headers["X-Request-Id"] = rid
        raise
    finally:
        request_id.reset(token)
    response.headers["X-Request-Id"] = rid
    return response


def build_app(
    db: Database,
    route_owners: Iterable[Any] = (),
    *,
    metrics: Metrics | None = None,
    metrics_token: str | None = None,
) -> web.Application:
    """Health, readiness, ``/metrics`` (``metrics``, whose hooks the MDE client and limiter were built with;
    none: the database gauges only; behind a bearer token when ``metrics_token`` is set) and the owners'
    routes."""
    app = web.Application(client_max_size=MAX_BODY, middlewares=[request_ids])
    app["db"] = db

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        try:
            async with db.sessions() as session:
                await session.execute(text("SELECT 1"))
        except Exception as exc:  # the reason is shown to the orchestrator, not a traceback
            return web.json_response({"status": "unavailable", "database": type(exc).__name__}, status=503)
        return web.json_response({"status": "ready"})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    register_metrics_route(app, metrics or Metrics(db), token=metrics_token)
    for owner in route_owners:
        register: Callable[[web.Application], Awaitable[None] | None] | None = getattr(owner, "register_routes", None)
        if register is not None:
            register(app)
    return app


async def start_site(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    return runner, int(bound)
