"""Run the benchmark tenant's simulator in its own process, so it does not share the bot's event loop.

python -m benchmarks.sim_process N TIME_SCALE   -> prints the URL on its first line, serves until killed
"""

from __future__ import annotations

import asyncio
import gc
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import tagged_simulator


async def main(n: int, time_scale: float) -> None:
    sim = tagged_simulator(n, time_scale)
    gc.freeze()  # the tenant lives as long as the process: the collector need not walk it on every page
    print(await sim.start(), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2])))
