"""Reading a whole device listing with the next page fetched ahead, and the lazy listing a caller may leave early.

The simulator over HTTP for paging itself; httpx.MockTransport for the pages that fail.
"""

from __future__ import annotations

import asyncio
from contextlib import aclosing

import httpx
import pytest

from mde.auth import StaticTokenProvider
from mde.client import MdeClient
from mde.errors import MdeServerError, UntrustedNextLink
from mde.models import Machine
from mde.retry import RetryPolicy
from mde.simulator import Simulator, SimulatorConfig
from mde.simulator.tenant import make_machine
from tests.support.simulator import calls

HOST = "https://api.security.microsoft.com"


async def test_a_prefetched_listing_keeps_the_order_and_asks_once_per_page(client: MdeClient, sim: Simulator) -> None:
    lazy = [m.id async for m in client.iter_machines(page_size=40)]
    lazy_pages = [c.query for c in calls(sim, "machines_read")]
    ahead = [m.id async for m in client.iter_machines(page_size=40, prefetch=True)]
    pages = [c.query for c in calls(sim, "machines_read")][len(lazy_pages) :]
    assert ahead == lazy and len(set(ahead)) == len(sim.tenant.machines)
    assert pages == lazy_pages and len(pages) == -(-len(sim.tenant.machines) // 40)


async def test_a_lazy_listing_left_early_asks_for_no_further_page(client: MdeClient, sim: Simulator) -> None:
    async with aclosing(client.iter_machines(page_size=40)) as machines:
        async for _ in machines:
            break
    assert len(calls(sim, "machines_read")) == 1


async def test_the_group_id_lookup_stays_lazy_when_the_group_is_read_ahead(client: MdeClient, sim: Simulator) -> None:
    found = [m async for m in client.iter_machines_in_group("tier0 servers", prefetch=True)]
    assert found
    assert len([c for c in calls(sim, "machines_read") if "$filter" not in c.query]) == 1


async def test_a_prefetched_listing_refuses_a_next_link_to_a_foreign_host_after_the_first_page() -> None:
    async with Simulator(SimulatorConfig(devices=120)) as sim, Simulator(SimulatorConfig(devices=1)) as elsewhere:
        sim.config.next_link_base = elsewhere.url.replace("127.0.0.1", "localhost")
        got: list[Machine] = []
        async with sim.connect() as client:
            with pytest.raises(UntrustedNextLink):
                async for machine in client.iter_machines(page_size=50, prefetch=True):
                    got.append(machine)
        assert len(got) == 50  # the first page's devices, as the lazy listing gives them
        assert len(calls(sim, "machines_read")) == 1 and elsewhere.request_log == []


def _pages(failing: httpx.Response | None) -> tuple[httpx.MockTransport, list[str]]:
    """Three pages of two devices linked by nextLink; page 2 answers ``failing`` when given."""
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        asked.append(f"page {page}")
        if page == 2 and failing is not None:
            return failing
        rows = [make_machine(f"{page}{i}".ljust(40, "0"), f"p{page}-{i}.contoso.local") for i in range(2)]
        body: dict[str, object] = {"value": rows}
        if page < 3:
            body["@odata.nextLink"] = f"{HOST}/api/machines?page={page + 1}"
        return httpx.Response(200, json=body)

    return httpx.MockTransport(handler), asked


def _client(transport: httpx.MockTransport) -> MdeClient:
    retry = RetryPolicy(max_attempts=2, base_s=0.001, cap_s=0.001)
    return MdeClient(HOST, StaticTokenProvider("t"), transport=transport, retry=retry)


async def test_the_next_page_is_asked_for_before_the_current_one_is_used_up() -> None:
    transport, asked = _pages(None)
    async with _client(transport) as client:
        seen_at_second_device: list[str] = []
        names = []
        async for machine in client.iter_machines(prefetch=True):
            names.append(machine.computer_dns_name)
            if len(names) == 2:
                seen_at_second_device = list(asked)
    assert seen_at_second_device == ["page 1", "page 2"]
    assert names == [f"p{p}-{i}.contoso.local" for p in (1, 2, 3) for i in range(2)]
    assert asked == ["page 1", "page 2", "page 3"]


async def test_an_error_on_the_prefetched_page_is_raised_once_after_page_one_and_page_three_is_never_asked() -> None:
    transport, asked = _pages(httpx.Response(503, json={"error": {"code": "ServiceUnavailable", "message": "busy"}}))
    got: list[str] = []
    errors: list[Exception] = []
    async with _client(transport) as client:
        try:
            async for machine in client.iter_machines(prefetch=True):
                got.append(machine.computer_dns_name)
        except MdeServerError as exc:
            errors.append(exc)
    assert got == ["p1-0.contoso.local", "p1-1.contoso.local"]
    assert len(errors) == 1
    assert asked == ["page 1", "page 2", "page 2"]  # page 2 retried within its call, as without prefetching


async def test_a_404_on_the_prefetched_page_ends_the_listing_as_it_does_lazily() -> None:
    transport, asked = _pages(httpx.Response(404, json={"error": {"code": "NotFound", "message": "none"}}))
    async with _client(transport) as client:
        names = [m.computer_dns_name async for m in client.iter_machines(prefetch=True)]
    assert names == ["p1-0.contoso.local", "p1-1.contoso.local"] and asked == ["page 1", "page 2"]


async def test_a_prefetched_listing_left_early_cancels_the_page_in_flight() -> None:
    """Only a caller that reads everything asks for prefetching; one that leaves anyway leaves no request behind."""
    never = asyncio.Event()
    asked: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        if "page=2" in str(request.url):
            await never.wait()  # page 2 is still in flight when the caller leaves
        rows = [make_machine("1".ljust(40, "0"), "p1.contoso.local")]
        return httpx.Response(200, json={"value": rows, "@odata.nextLink": f"{HOST}/api/machines?page=2"})

    async with _client(httpx.MockTransport(handler)) as client:
        async with aclosing(client.iter_machines(prefetch=True)) as machines:
            async for _ in machines:
                break
        assert len(asked) == 2  # page 2 was in flight
        assert asyncio.all_tasks() == {asyncio.current_task()}
