"""``GET /metrics``: open by default (documented: keep it on an internal port), behind a bearer token when
``METRICS_TOKEN`` is set (``tests/bot/test_serve.py`` checks that ``serve`` wires it)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from bot.server import build_app, start_site
from tests.support.stack import Stack

TOKEN = "scrape-token"


@pytest.fixture
async def metrics_url() -> AsyncIterator[str]:
    async with Stack.start(start_engine=False) as stack:
        runner, port = await start_site(build_app(stack.db, metrics_token=TOKEN), "127.0.0.1", 0)
        try:
            yield f"http://127.0.0.1:{port}/metrics"
        finally:
            await runner.cleanup()


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["none", "wrong", "no-scheme", "basic"],
)
async def test_without_the_token_metrics_are_401_and_say_nothing(metrics_url: str, headers: dict[str, str]) -> None:
    async with httpx.AsyncClient() as http:
        answer = await http.get(metrics_url, headers=headers)
    assert answer.status_code == 401 and "mdechatops" not in answer.text


async def test_with_the_token_metrics_are_served(metrics_url: str) -> None:
    async with httpx.AsyncClient() as http:
        answer = await http.get(metrics_url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200 and "mdechatops_requests" in answer.text
