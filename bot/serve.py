"""``mde-chatops serve``: the production process: web server, worker, delivery, enabled chat surfaces."""

from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import AsyncExitStack

from approvals.db import Database
from approvals.execution.flows import WorkerConfig
from approvals.incidents.rules import load_rules
from approvals.migrate import current_revision, head_revision, upgrade_async
from approvals.policy import load_policy
from approvals.service import ChatOps
from bot.config import Settings
from bot.containment_reconcile import ReconcileConfig
from bot.engine import Engine
from bot.logging import configure_logging
from bot.mde_access import build_client
from bot.metrics import Metrics
from bot.secrets import resolve_settings
from bot.server import build_app, start_site
from bot.surfaces.base import ChatSurface
from bot.webhooks import IncidentWebhook
from mde.limiter_backends.from_url import default_limiter_url, limiter_backend_from_url
from mde.ratelimit import RateLimiter

log = logging.getLogger(__name__)


def build_surfaces(settings: Settings, chatops: ChatOps) -> list[ChatSurface]:
    surfaces: list[ChatSurface] = []
    if settings.slack_enabled:
        from bot.slack.factory import slack_surface_from_settings

        surfaces.append(slack_surface_from_settings(settings, chatops))
    if settings.teams_enabled:
        from bot.teams.factory import teams_surface_from_settings

        surfaces.append(teams_surface_from_settings(settings, chatops))
    return surfaces


def incident_routes(settings: Settings, engine: Engine) -> list[IncidentWebhook]:
    """``POST /api/incidents`` exists only when a secret or a token is configured (safe default: off)."""
    secret = settings.incidents_secret.get_secret_value() if settings.incidents_secret else None
    token = settings.incidents_token.get_secret_value() if settings.incidents_token else None
    if not (secret or token):
        return []
    return [IncidentWebhook(engine.db, engine.incidents, secret=secret, token=token)]


async def prepare_database(settings: Settings) -> Database:
    """SQLite migrates itself (zero set-up); PostgreSQL must be migrated explicitly with `db upgrade`."""
    url = settings.database_url
    if url.startswith("sqlite"):
        await upgrade_async(url)
    else:
        current, head = await current_revision(url), head_revision()
        if current != head:
            raise RuntimeError(
                f"the database schema is at {current or 'nothing'}, the code needs {head}: run "
                "`mde-chatops db upgrade` first"
            )
    return Database(url)


async def serve(settings: Settings) -> int:
    configure_logging(settings.log_format, settings.log_level)
    settings = await resolve_settings(settings)  # file: and Key Vault references
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with AsyncExitStack() as stack:
        db = await prepare_database(settings)
        stack.push_async_callback(db.dispose)
        metrics = Metrics(db)
        backend = limiter_backend_from_url(default_limiter_url(settings.mde_limiter_url, settings.database_url))
        stack.push_async_callback(backend.aclose)
        limiter = RateLimiter(
            time_scale=settings.mde_time_scale,
            minute_limit=settings.mde_minute_limit,
            hour_limit=settings.mde_hour_limit,
            backend=backend,
            clock=backend.clock,
            on_wait=metrics.observe_wait,
        )
        client = build_client(settings, limiter, on_response=metrics.observe_response)
        stack.push_async_callback(client.aclose)
        engine = Engine.build(
            db=db,
            client=client,
            policy=load_policy(settings.policy_file),
            rules=load_rules(settings.rules_file),
            make_surfaces=lambda chatops: build_surfaces(settings, chatops),
            limiter=limiter,
            worker_config=WorkerConfig(
                concurrency=settings.worker_concurrency,
                poll_interval_s=settings.poll_interval_s,
                stale_s=settings.worker_stale_s,
            ),
            delivery_lease_s=settings.delivery_lease_s,
            owner=settings.worker_id,
            reconcile=ReconcileConfig(interval_s=settings.reconcile_interval_s)
            if settings.reconcile_interval_s
            else None,
        )
        metrics_token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
        owners = [*engine.surfaces, *incident_routes(settings, engine)]
        app = build_app(db, owners, metrics=metrics, metrics_token=metrics_token)
        runner, port = await start_site(app, settings.host, settings.port)
        stack.push_async_callback(runner.cleanup)
        await engine.start()
        stack.push_async_callback(engine.stop)
        log.info(
            "mde-chatops listening on %s:%s with surfaces %s",
            settings.host,
            port,
            [s.name for s in engine.surfaces] or "none",
        )
        await stop.wait()
    return 0
