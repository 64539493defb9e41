"""A worker in its own process, for crash tests: ``python -m tests.support.worker_process DB_URL SIM_URL OWNER``."""

from __future__ import annotations

import asyncio
import logging
import sys

from approvals.db import Database
from approvals.execution.flows import Worker, WorkerConfig
from mde.auth import StaticTokenProvider
from mde.client import MdeClient
from mde.ratelimit import RateLimiter


async def main(db_url: str, sim_url: str, owner: str, minute_limit: int, stale_s: float = 1.5) -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stdout)
    db = Database(db_url)
    limiter = RateLimiter(time_scale=60, minute_limit=minute_limit)
    client = MdeClient(sim_url, StaticTokenProvider("sim-token"), limiter=limiter)
    worker = Worker(
        db,
        client,
        owner=owner,
        limiter=limiter,
        config=WorkerConfig(
            concurrency=4, poll_interval_s=0.2, heartbeat_s=0.3, stale_s=stale_s, idle_wait_s=0.1, housekeeping_s=0.2
        ),
    )
    await worker.start()
    print("worker started", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    stale = float(sys.argv[5]) if len(sys.argv) > 5 else 1.5
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), stale))
