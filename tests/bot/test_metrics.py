"""``GET /metrics`` over real HTTP: database gauges move with requests, MDE counters move with 429s."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from prometheus_client.parser import text_string_to_metric_families

from approvals.db import Database
from approvals.identity import Actor, Origin
from bot.server import build_app, start_site
from tests.support.stack import Stack

ALICE = Actor("console", "alice", "alice")
HERE = Origin(surface="console", channel_id="console")


@asynccontextmanager
async def served(stack: Stack) -> AsyncIterator[str]:
    app = build_app(stack.db, metrics=stack.metrics)
    runner, port = await start_site(app, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        await runner.cleanup()


async def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_the_state_gauge_counts_a_new_pending_request(db: Database) -> None:
    async with Stack.start(db=db, start_engine=False) as stack, served(stack) as url:
        before = await scrape(url)
        assert value(before, "mdechatops_database_up") == 1
        assert value(before, "mdechatops_requests", state="pending") == 0
        reply = await stack.chatops.handle(ALICE, HERE, "isolate device:ws-0005 --reason 'INC 9'")
        assert reply.request is not None
        after = await scrape(url)
        assert value(after, "mdechatops_requests", state="pending") == 1
        assert value(after, "mdechatops_requests", state="succeeded") == 0
        assert value(after, "mdechatops_mde_calls_total", family="machines_read", status="200") >= 1


async def test_a_429_from_mde_moves_the_throttle_counter() -> None:
    async with Stack.start(start_engine=False) as stack, served(stack) as url:
        async with httpx.AsyncClient() as http:
            fault = await http.post(f"{stack.sim.url}/_sim/faults", json={"burst_429": 1})
        assert fault.status_code == 200
        machine_id = next(iter(stack.sim.tenant.machines.values()))["id"]
        await stack.client.get_machine(machine_id)  # throttled once, then answered after Retry-After
        samples = await scrape(url)
        assert value(samples, "mdechatops_mde_throttled_total", family="machines_read") == 1
        assert value(samples, "mdechatops_mde_calls_total", family="machines_read", status="429") == 1
        assert value(samples, "mdechatops_mde_calls_total", family="machines_read", status="200") == 1
        assert value(samples, "mdechatops_limiter_wait_seconds_count", family="machines_read") == 2


async def test_finished_actions_and_the_queue_are_reported(db: Database) -> None:
    bob = Actor("console", "bob", "bob")
    async with Stack.start(db=db) as stack, served(stack) as url:
        request = (await stack.chatops.handle(ALICE, HERE, "scan device:ws-0005 --reason r")).request
        assert request is not None
        await stack.chatops.decide(bob, request.id, approve=True)
        await stack.wait_for_state(request.id, {"succeeded"})
        samples = await scrape(url)
        assert value(samples, "mdechatops_actions", outcome="Succeeded") == 1
        assert value(samples, "mdechatops_jobs", state="done") == 1
        assert value(samples, "mdechatops_queue_depth") == 0
        assert value(samples, "mdechatops_requests", state="succeeded") == 1


async def test_an_unreachable_database_is_reported_not_raised() -> None:
    db = Database("postgresql://nobody@127.0.0.1:1/none")
    try:
        runner, port = await start_site(build_app(db), "127.0.0.1", 0)
        try:
            samples = await scrape(f"http://127.0.0.1:{port}/metrics")
        finally:
            await runner.cleanup()
    finally:
        await db.dispose()
    assert value(samples, "mdechatops_database_up") == 0
    assert not any(name == "mdechatops_requests" for name, _ in samples)


async def test_incidents_and_rejected_webhook_bodies_are_counted(db: Database) -> None:
    from approvals.incidents import service as incidents
    from approvals.incidents.payloads import parse_incident
    from tests.support.incidents import sentinel_incident

    async with Stack.start(db=db, start_engine=False) as stack, served(stack) as url:
        await stack.engine.incidents.receive(parse_incident(sentinel_incident(number=1)), {})
        await stack.engine.incidents.receive(parse_incident(sentinel_incident(number=2, status="Closed")), {})
        async with stack.db.transaction() as session:
            incidents.record_reject(session, "the body is not JSON", b"{oops")
        samples = await scrape(url)
        assert value(samples, "mdechatops_incidents", status="open") == 1
        assert value(samples, "mdechatops_incidents", status="closed") == 1
        assert value(samples, "mdechatops_webhook_rejects") == 1
