"""The load generator for slack_ack.py, in its own process so its event loop is not the bot's.

python -m benchmarks.slack_load URL SECRET COMMANDS CONCURRENCY RESPONSE_URL MIX...  -> JSON latencies (ms)
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sys
import time
from urllib.parse import urlencode

import aiohttp


def signed(secret: str, body: str) -> dict[str, str]:
    ts = str(int(time.time()))
    sig = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": sig,
        "Content-Type": "application/x-www-form-urlencoded",
    }


async def main(url: str, secret: str, commands: int, concurrency: int, response_url: str, mix: list[str]) -> None:
    """aiohttp, not httpx: at concurrency 20 httpx alone adds ~70 ms p50 / ~260 ms p99 against an empty
    handler, which would be measuring the load generator instead of the bot."""
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as http:

        async def one(i: int, *, measure: bool = True) -> None:
            body = urlencode(
                {
                    "team_id": "T1",
                    "channel_id": "CSOC",
                    "user_id": "UALICE",
                    "user_name": "alice",
                    "command": "/mde",
                    "text": mix[i % len(mix)] if measure else "help",
                    "response_url": f"{response_url}/{i}",
                    "trigger_id": "t",
                }
            )
            async with gate:
                started = time.perf_counter()
                async with http.post(url, data=body, headers=signed(secret, body)) as response:
                    await response.read()
                    if measure:
                        latencies.append((time.perf_counter() - started) * 1000)
                    if response.status != 200:
                        raise SystemExit(f"HTTP {response.status}: {(await response.text())[:200]}")

        # open the keep-alive connections first, as Slack's own connections to a bot would already be open
        await asyncio.gather(*(one(-1 - i, measure=False) for i in range(concurrency)))
        await asyncio.gather(*(one(i) for i in range(commands)))
    print(json.dumps(latencies))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6:]))
