"""The PostgreSQL server restarts in the middle of a bulk run (PostgreSQL only: it restarts the real server)."""

from __future__ import annotations

import asyncio
import os
import shutil

import pytest
from sqlalchemy import text

from approvals.db import Database
from approvals.models import create_all
from mde.simulator import SimulatorConfig
from tests.support.databases import postgres_url
from tests.support.faults import FLEET_TAG, console, finish, request_and_approve, tag_fleet, wait_until
from tests.support.stack import Stack

pytestmark = pytest.mark.postgres


async def restart_postgres() -> str:
    """Restart the local cluster the way scripts/ensure-postgres starts it; returns its output."""
    assert shutil.which("pg_ctlcluster"), "pg_ctlcluster is needed to restart the server"
    version = sorted(os.listdir("/etc/postgresql"))[0]
    process = await asyncio.create_subprocess_exec(
        "pg_ctlcluster",
        "--skip-systemctl-redirect",
        version,
        "main",
        "restart",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output = (await process.communicate())[0].decode(errors="replace")
    assert process.returncode == 0, output
    return output


async def wait_for_postgres(db: Database, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            async with db.sessions() as session:
                await session.execute(text("SELECT 1"))
            return
        except Exception:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.1)


async def test_a_postgresql_restart_mid_run_loses_nothing_and_repeats_nothing() -> None:
    async with postgres_url() as url:
        db = Database(url)
        try:
            await create_all(db)
            config = SimulatorConfig(devices=600, time_scale=60, inactive_rate=0.0)
            async with Stack.start(lambda _c: [console()], db=db, sim_config=config) as stack:
                fleet = tag_fleet(stack.sim, 250)  # 100 at once, then 100 a second: the restart lands mid-run
                request_id = await request_and_approve(
                    stack, f'isolate tag:"{FLEET_TAG}" --reason "INC-9 reliability" --type full'
                )
                await wait_until(lambda: len(stack.sim.tenant.actions) >= 30, "the run to be under way")
                await restart_postgres()
                assert len(stack.sim.tenant.actions) < len(fleet), "the run finished before the restart"
                await wait_for_postgres(db)
                outcome = await finish(stack, request_id, fleet, timeout=60)
                assert outcome.state == "succeeded" and set(outcome.devices.values()) == {"Succeeded"}
                assert outcome.summary.endswith("250 succeeded, 0 failed, 0 skipped, 0 cancelled, of 250.")
        finally:
            await db.dispose()
