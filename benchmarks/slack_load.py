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

import httpx


def signed(secret: str, body: str) -> dict[str, str]:
    ts = str(int(time.time()))
    sig = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": sig,
        "Content-Type": "application/x-www-form-urlencoded",
    }


async def main(url: str, secret: str, commands: int, concurrency: int, response_url: str, mix: list[str]) -> None:
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=10) as http:

        async def one(i: int) -> None:
            body = urlencode(
                {
                    "team_id": "T1",
                    "channel_id": "CSOC",
                    "user_id": "UALICE",
                    "user_name": "alice",
                    "command": "/mde",
                    "text": mix[i % len(mix)],
                    "response_url": f"{response_url}/{i}",
                    "trigger_id": "t",
                }
            )
            async with gate:
                started = time.perf_counter()
                response = await http.post(url, content=body, headers=signed(secret, body))
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise SystemExit(f"HTTP {response.status_code}: {response.text[:200]}")

        await asyncio.gather(*(one(i) for i in range(commands)))
    print(json.dumps(latencies))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6:]))
