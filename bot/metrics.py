"""Prometheus metrics on ``GET /metrics``, in a registry of their own (nothing global, nothing shared).

Two kinds: counters this process increments as it talks to MDE (calls and 429s per endpoint family,
rate-limiter waits), and gauges read from the database at scrape time (requests by state, jobs by state
and outcome, queue depth). The database gauges are the same on every replica: aggregate them with
``max``, not ``sum``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from approvals.containment import service as containment
from approvals.db import Database, utcnow
from approvals.execution.models import Job, JobState
from approvals.incidents.models import IncidentRecord, WebhookReject
from approvals.requests.models import RequestRecord
from approvals.requests.states import RequestState

log = logging.getLogger(__name__)

PREFIX = "mdechatops"
#: limiter waits run from nothing to the hourly window
WAIT_BUCKETS = (0.0, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
DB_TIMEOUT_S = 5.0
T = TypeVar("T")


@dataclass
class Snapshot:
    """What the database said at the last scrape; ``up`` is False when it could not be read."""

    up: bool = False
    requests: dict[str, int] = field(default_factory=dict)
    jobs: dict[tuple[str, str | None], int] = field(default_factory=dict)
    incidents: dict[bool, int] = field(default_factory=dict)
    webhook_rejects: int = 0
    isolated: dict[str, int] = field(default_factory=dict)


async def read_snapshot(db: Database) -> Snapshot:
    async with db.sessions() as session:
        requests = await session.execute(select(RequestRecord.state, func.count()).group_by(RequestRecord.state))
        jobs = await session.execute(select(Job.state, Job.outcome, func.count()).group_by(Job.state, Job.outcome))
        incidents = await session.execute(select(IncidentRecord.closed, func.count()).group_by(IncidentRecord.closed))
        rejects = await session.scalar(select(func.count()).select_from(WebhookReject))
        isolated = await containment.age_buckets(session, utcnow())
        return Snapshot(
            up=True,
            requests={state: count for state, count in requests.all()},
            jobs={(state, outcome): count for state, outcome, count in jobs.all()},
            incidents={bool(closed): count for closed, count in incidents.all()},
            webhook_rejects=int(rejects or 0),
            isolated=isolated,
        )


class DatabaseCollector(Collector):
    """Gauges computed from the database: ``refresh()`` (async) reads it, ``collect()`` (sync) reports."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._snapshot = Snapshot()

    async def refresh(self) -> None:
        try:
            self._snapshot = await asyncio.wait_for(read_snapshot(self._db), DB_TIMEOUT_S)
        except Exception as exc:  # a scrape reports the database as down instead of failing
            log.warning("metrics: cannot read the database (%s)", type(exc).__name__)
            self._snapshot = Snapshot(up=False)

    def collect(self) -> Iterable[Metric]:
        snap = self._snapshot
        yield GaugeMetricFamily(f"{PREFIX}_database_up", "1 when the last scrape could read the database", snap.up)
        if not snap.up:
            return
        requests = GaugeMetricFamily(f"{PREFIX}_requests", "Requests in the database by state", labels=["state"])
        for state in RequestState:
            requests.add_metric([state.value], snap.requests.get(state.value, 0))
        yield requests
        jobs = GaugeMetricFamily(
            f"{PREFIX}_jobs", "Jobs (one per device; bulk tags one per chunk) by state", labels=["state"]
        )
        by_state = _sum_by(snap.jobs, lambda key: key[0])
        for job_state in JobState:
            jobs.add_metric([job_state.value], by_state.get(job_state.value, 0))
        yield jobs
        actions = GaugeMetricFamily(
            f"{PREFIX}_actions", "Finished actions (jobs with an outcome) by outcome", labels=["outcome"]
        )
        for outcome, count in sorted(_sum_by(snap.jobs, lambda key: key[1]).items()):
            if outcome is not None:
                actions.add_metric([outcome], count)
        yield actions
        yield GaugeMetricFamily(
            f"{PREFIX}_queue_depth",
            "Jobs queued for submission to MDE",
            by_state.get(JobState.QUEUED.value, 0),
        )
        incidents = GaugeMetricFamily(f"{PREFIX}_incidents", "Incidents received, open or closed", labels=["status"])
        incidents.add_metric(["open"], snap.incidents.get(False, 0))
        incidents.add_metric(["closed"], snap.incidents.get(True, 0))
        yield incidents
        yield GaugeMetricFamily(
            f"{PREFIX}_webhook_rejects",
            "Authenticated incident bodies that could not be read (kept in webhook_rejects)",
            snap.webhook_rejects,
        )
        isolated = GaugeMetricFamily(
            f"{PREFIX}_isolated_devices",
            "Devices isolated now according to the containment register, by how long they have been",
            labels=["age"],
        )
        for label, _bound in containment.AGE_BUCKETS:
            isolated.add_metric([label], snap.isolated.get(label, 0))
        yield isolated


def _sum_by(counts: dict[tuple[str, str | None], int], key: Callable[[tuple[str, str | None]], T]) -> dict[T, int]:
    out: dict[T, int] = {}
    for k, count in counts.items():
        out[key(k)] = out.get(key(k), 0) + count
    return out


class Metrics:
    def __init__(self, db: Database | None = None) -> None:
        self.registry = CollectorRegistry()
        self.mde_calls = Counter(
            f"{PREFIX}_mde_calls",
            "MDE API answers by endpoint family and HTTP status",
            ["family", "status"],
            registry=self.registry,
        )
        self.mde_throttled = Counter(
            f"{PREFIX}_mde_throttled",
            "HTTP 429 answers from MDE by endpoint family",
            ["family"],
            registry=self.registry,
        )
        self.limiter_wait = Histogram(
            f"{PREFIX}_limiter_wait_seconds",
            "Seconds a call waited in the rate limiter before it was sent, by endpoint family",
            ["family"],
            buckets=WAIT_BUCKETS,
            registry=self.registry,
        )
        self._database = DatabaseCollector(db) if db is not None else None
        if self._database is not None:
            self.registry.register(self._database)

    def observe_response(self, family: str, status: int) -> None:
        """The MDE client's ``on_response`` hook: pass it when building the client."""
        self.mde_calls.labels(family=family, status=str(status)).inc()
        if status == 429:
            self.mde_throttled.labels(family=family).inc()

    def observe_wait(self, family: str, seconds: float) -> None:
        """The rate limiter's ``on_wait`` hook: pass it when building the limiter."""
        self.limiter_wait.labels(family=family).observe(seconds)

    async def render(self) -> bytes:
        if self._database is not None:
            await self._database.refresh()
        return generate_latest(self.registry)


METRICS = web.AppKey("mde_chatops_metrics", Metrics)


def register_metrics_route(app: web.Application, metrics: Metrics, *, token: str | None = None) -> None:
    """Add ``GET /metrics`` rendering ``metrics`` (whose hooks the MDE client and limiter were built with).
    With ``token`` (``METRICS_TOKEN``) a scrape must send ``Authorization: Bearer <token>``, else 401."""
    app[METRICS] = metrics
    expected = f"Bearer {token}".encode() if token else None

    async def scrape(request: web.Request) -> web.Response:
        given = request.headers.get("Authorization", "").encode()
        if expected is not None and not hmac.compare_digest(given, expected):
            return web.json_response({"error": "unauthorized"}, status=401)
        return web.Response(body=await metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/metrics", scrape)
