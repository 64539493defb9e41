"""The console's /incident directive runs the same flow as POST /api/incidents (the demo uses it)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

from bot.console.repl import Console
from bot.console.surface import ConsoleSurface
from bot.demo import demo_rules
from tests.support.stack import Stack

EXAMPLES = Path(__file__).parents[2] / "examples" / "incidents"


async def _lines(*lines: str) -> AsyncIterator[str]:
    for line in lines:
        yield line


async def test_an_incident_file_is_posted_proposed_approved_and_released() -> None:
    out = io.StringIO()
    surface = ConsoleSurface(out)
    async with Stack.start(make_surfaces=lambda _c: [surface], devices=300, rules=demo_rules()) as stack:
        console = Console(stack.chatops, stack.engine.delivery, out, incidents=stack.engine.incidents)
        failures = await console.run(
            _lines(
                f"/incident {EXAMPLES / 'sentinel-ransomware.json'}",
                "/as bob",
                "approve 1",
                "/wait 1 60",
                f"/incident {EXAMPLES / 'sentinel-ransomware-closed.json'}",
                "approve 2",
                "/wait 2 60",
                "/incident /nonexistent.json",
            )
        )
        text = out.getvalue()
    assert failures == 0 and console.errors == 1  # only the missing file
    assert "Incident 2044 received (new); rules: ransomware-high; requests: #1" in text
    assert "Incident 2044 received (updated: closed, status); rules: none; requests: #2" in text
    assert "Summary of #1: Succeeded. 2 succeeded" in text and "Summary of #2: Succeeded. 2 succeeded" in text
    unisolated = [a.machine_id for a in stack.sim.tenant.actions.values() if a.type == "Unisolate"]
    assert len(unisolated) == 2
