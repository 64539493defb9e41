"""Serve an aiohttp app on 127.0.0.1 on a free port: how every local fake server in the tests starts."""

from __future__ import annotations

import ssl

from aiohttp import web


async def serve(app: web.Application, *, ssl_context: ssl.SSLContext | None = None) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}"
