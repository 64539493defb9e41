"""MDE misbehaving during a bulk run, end to end through the real worker, client and simulator: each run
must finish with one action per device, a final state for every device and one summary."""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import replace

import pytest

from mde.client import MdeClient
from mde.ratelimit import Grant
from mde.simulator import SimulatorConfig
from tests.support.faults import FLEET_TAG, console, finish, inject, request_and_approve, tag_fleet, wait_until
from tests.support.stack import FAST_WORKER, Stack

ISOLATE = f'isolate tag:"{FLEET_TAG}" --reason "INC-7 reliability" --type full'


async def test_a_5xx_outage_mid_run_delays_the_run_but_repeats_and_loses_nothing() -> None:
    async with Stack.start(lambda _c: [console()], devices=300) as stack:
        fleet = tag_fleet(stack.sim, 60)
        request_id = await request_and_approve(stack, ISOLATE)
        await wait_until(lambda: len(stack.sim.tenant.actions) >= 10, "the run to be under way")
        await inject(stack.sim, burst_5xx=80)  # the next 80 calls of any kind answer 503
        outcome = await finish(stack, request_id, fleet)
        stats = stack.sim.stats()
        assert stack.sim.config.burst_5xx == 0 and stats["http_5xx"] == 80  # the outage really happened
        assert outcome.state == "succeeded" and set(outcome.devices.values()) == {"Succeeded"}
        assert outcome.summary.endswith("60 succeeded, 0 failed, 0 skipped, 0 cancelled, of 60.")


async def test_an_action_answer_lost_to_a_timeout_is_looked_up_not_resent(monkeypatch: pytest.MonkeyPatch) -> None:
    # the client gives up after 0.5 s; the simulator executes the next 4 isolations but answers after 1.5 s
    monkeypatch.setattr("tests.support.stack.MdeClient", functools.partial(MdeClient, timeout=0.5))
    async with Stack.start(lambda _c: [console()], devices=200) as stack:
        fleet = tag_fleet(stack.sim, 12)
        await inject(stack.sim, slow_answers=4, slow_answer_s=1.5)
        request_id = await request_and_approve(stack, ISOLATE)
        outcome = await finish(stack, request_id, fleet)
        assert stack.sim.config.slow_answers == 0

        def posts() -> Counter[str]:
            log = stack.sim.request_log
            return Counter(e.path.split("/")[-2] for e in log if e.method == "POST" and e.path.endswith("/isolate"))

        # the simulator logs a call when it answers: the late answers come after the run has finished
        await wait_until(lambda: posts().total() >= len(fleet), "the late answers to be logged")
        assert sorted(posts()) == fleet and set(posts().values()) == {1}  # no POST was sent twice
        # each unanswered POST was reconciled by its comment tag: a look-up of its device, or one listing of the
        # request's isolations when several retried jobs share a batch (approvals/execution/adoption.py)
        filters = [e.query.get("$filter", "") for e in stack.sim.request_log]
        per_device = [f for f in filters if "machineId eq" in f]
        listings = [f for f in filters if "type eq 'Isolate'" in f and "creationDateTimeUtc gt" in f]
        assert len(per_device) >= 4 or listings
        assert outcome.state == "succeeded" and set(outcome.devices.values()) == {"Succeeded"}


async def test_a_429_storm_pauses_the_family_for_each_retry_after_and_the_run_completes() -> None:
    async with Stack.start(lambda _c: [console()], devices=300) as stack:
        fleet = tag_fleet(stack.sim, 60)
        limiter = stack.limiter
        penalties: list[tuple[str, float, float]] = []
        grants: list[Grant] = []
        penalize, acquire = limiter.penalize, limiter.acquire

        def recording_penalize(family: str, retry_after: float) -> None:
            penalties.append((family, limiter.clock(), retry_after))
            penalize(family, retry_after)

        async def recording_acquire(family: str) -> Grant:
            grant = await acquire(family)
            grants.append(grant)
            return grant

        limiter.penalize = recording_penalize  # type: ignore[method-assign]
        limiter.acquire = recording_acquire  # type: ignore[method-assign]
        request_id = await request_and_approve(stack, ISOLATE)
        await wait_until(lambda: len(stack.sim.tenant.actions) >= 10, "the run to be under way")
        # another app ate the quota: the next 40 calls get 429 with Retry-After 30 s (0.5 s at time scale 60)
        await inject(stack.sim, burst_429=40, burst_429_retry_after_s=30)
        outcome = await finish(stack, request_id, fleet)
        assert stack.sim.stats()["http_429"] == 40 and len(penalties) == 40
        assert all(abs(wait - 0.5) < 0.01 for _f, _at, wait in penalties)  # MDE's Retry-After was read
        for family, at, wait in penalties:  # nobody in that family was let through while it waited
            early = [g.at for g in grants if g.family == family and at < g.at < at + wait - 1e-6]
            assert not early, f"{len(early)} {family} call(s) granted inside a Retry-After pause"
        assert outcome.state == "succeeded" and set(outcome.devices.values()) == {"Succeeded"}


class Issuer:
    """Entra, reduced to what matters here: the token that is valid now."""

    def __init__(self, token: str) -> None:
        self.current = token


class CachingTokens:
    """A token provider like the Azure one: caches the token until told it is stale."""

    def __init__(self, issuer: Issuer) -> None:
        self.issuer = issuer
        self.cached: str | None = None
        self.fetches = 0

    async def get_token(self) -> str:
        if self.cached is None:
            self.fetches += 1
            self.cached = self.issuer.current
        return self.cached

    def invalidate(self) -> None:
        self.cached = None

    async def close(self) -> None:
        return None


async def test_a_token_that_expires_mid_run_is_refreshed_and_nothing_is_repeated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    issuer = Issuer("sim-token")
    tokens = CachingTokens(issuer)
    monkeypatch.setattr("tests.support.stack.StaticTokenProvider", lambda _token: tokens)
    async with Stack.start(lambda _c: [console()], devices=300) as stack:
        fleet = tag_fleet(stack.sim, 40)
        request_id = await request_and_approve(stack, ISOLATE)
        await wait_until(lambda: len(stack.sim.tenant.actions) >= 10, "the run to be under way")
        assert tokens.fetches == 1
        issuer.current = "sim-token-2"
        await inject(stack.sim, token="sim-token-2")  # from now on MDE rejects the old token
        outcome = await finish(stack, request_id, fleet)
        rejected = stack.sim.stats()["http_401"]
        assert rejected >= 1 and 2 <= tokens.fetches <= 1 + rejected  # refreshed, and only after a 401
        assert outcome.state == "succeeded" and set(outcome.devices.values()) == {"Succeeded"}


async def test_an_action_that_never_finishes_is_reported_as_timeout() -> None:
    # MDE would time the action out after days; the worker's own deadline (2 s here) reports it first
    config = SimulatorConfig(devices=200, time_scale=60, offline_timeout_s=10**9)
    async with Stack.start(
        lambda _c: [console()], sim_config=config, worker_config=replace(FAST_WORKER, action_timeout_s=2.0)
    ) as stack:
        fleet = tag_fleet(stack.sim, 5)
        stuck = fleet[0]
        await inject(stack.sim, stuck_machines=[stuck])
        request_id = await request_and_approve(stack, ISOLATE)
        outcome = await finish(stack, request_id, fleet)
        assert outcome.state == "partially_failed"
        assert outcome.devices == {m: ("TimeOut" if m == stuck else "Succeeded") for m in fleet}
        name = stack.sim.tenant.machines[stuck]["computerDnsName"]
        assert "4 succeeded, 1 failed" in outcome.summary and f"✗ {name}: TimeOut" in outcome.summary
        (action,) = [a for a in stack.sim.tenant.actions.values() if a.machine_id == stuck]
        assert action.status() == "InProgress"  # MDE never finished it: the deadline reported it
