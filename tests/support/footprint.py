"""What an attack must not leave behind: requests, decisions, jobs, MDE machine actions."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from tests.support.stack import Stack


@dataclass(frozen=True)
class Footprint:
    requests: int
    decisions: int
    jobs: int
    mde_actions: int
    states: tuple[str, ...]


async def footprint(stack: Stack) -> Footprint:
    async with stack.db.sessions() as session:

        async def count(table: str) -> int:
            return int((await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())

        states = tuple((await session.execute(text("SELECT state FROM requests ORDER BY id"))).scalars())
        return Footprint(
            requests=await count("requests"),
            decisions=await count("decisions"),
            jobs=await count("jobs"),
            mde_actions=len(stack.sim.tenant.actions),
            states=states,
        )


NOTHING = Footprint(requests=0, decisions=0, jobs=0, mde_actions=0, states=())
