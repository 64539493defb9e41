"""quarantine (StopAndQuarantineFile per device) and collect-file (live response GetFile) end to end through
the engine, the real client and the simulator over HTTP."""

from __future__ import annotations

import io

import httpx
import pytest
from sqlalchemy import select

from approvals.audit.models import AuditEntry
from approvals.identity import Origin
from bot.console.surface import ConsoleSurface
from mde.simulator.tenant import COLLECTABLE, RARE_FILE
from tests.support.actors import ALICE, BOB, HERE
from tests.support.events import notes
from tests.support.grammar import parse_error
from tests.support.stack import Stack


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (f"quarantine sha256:{RARE_FILE[1]} --reason r", "quarantine takes the file's SHA-1 first"),
        (f"quarantine hash:{RARE_FILE[1]} --reason r", "by SHA-1 only"),
        ("quarantine sha1:abc --reason r", "A SHA-1 has 40 hex digits"),
        (f"quarantine sha1:{RARE_FILE[0]}", 'needs --reason "…"'),
        ('collect-file "C:\\Temp\\*.exe" on device:ws-1 --reason r', "wildcards are not allowed"),
        ("collect-file Temp\\a.exe on device:ws-1 --reason r", "is not a full path"),
        ('collect-file "/etc/passwd" on tag:x --reason r', "exactly one device:NAME"),
        ('collect-file "/etc/../etc/passwd" on device:ws-1 --reason r', "without '..'"),
    ],
)
def test_bad_file_commands_get_one_clear_sentence(text: str, says: str) -> None:
    assert says in parse_error(text)


async def test_quarantine_without_targets_acts_where_mde_saw_the_file(db_kind: str) -> None:
    async with Stack.start(db_kind=db_kind, devices=100) as stack:
        reply = await stack.chatops.handle(ALICE, HERE, f'quarantine sha1:{RARE_FILE[0]} --reason "INC-3 dropper"')
        assert not reply.error and reply.request is not None, reply.text
        view = reply.request
        expected = set(stack.sim.tenant.files[RARE_FILE[0]]["machineIds"])
        assert {d.machine_id for d in view.devices} == expected
        assert (
            view.action_label == f"Stop and quarantine file {RARE_FILE[0]}"
            and view.target_text == f"file:{RARE_FILE[0]}"
        )
        await stack.chatops.decide(BOB, view.id, approve=True)
        assert await stack.wait_for_state(view.id, {"succeeded"}) == "succeeded"
        actions = [a for a in stack.sim.tenant.actions.values() if a.type == "StopAndQuarantineFile"]
        assert sorted(a.machine_id for a in actions) == sorted(expected)
        assert all(a.extra["relatedFileInfo"]["fileIdentifier"] == RARE_FILE[0] for a in actions)
        assert all(f"[mde-chatops #{view.id}]" in a.comment for a in actions)
        assert stack.sim.stats()["duplicate_actions"] == 0


async def test_quarantine_on_targets_excludes_what_cannot_run_it() -> None:
    async with Stack.start(devices=200, start_engine=False) as stack:
        reply = await stack.chatops.handle(
            ALICE, HERE, f'quarantine sha1:{RARE_FILE[0]} on group:"Linux Fleet" tag:"Finance Laptops" --reason r'
        )
        assert reply.request is not None, reply.text
        linux = [e for e in reply.request.exclusions if e.kind == "unsupported" and "Linux" in e.reason]
        assert linux and all("needs Windows 10 (1703 or later) or Windows 11" in e.reason for e in linux)
        assert all((d.os_platform or "").startswith("Windows1") for d in reply.request.devices)


async def test_collect_file_delivers_a_download_link_and_status_gives_a_fresh_one() -> None:
    out = io.StringIO()
    async with Stack.start(lambda _c: [ConsoleSurface(out)], devices=100) as stack:
        machine_id = next(mid for mid, paths in stack.sim.tenant.device_files.items() if COLLECTABLE in paths)
        name = stack.sim.tenant.machines[machine_id]["computerDnsName"]
        reply = await stack.chatops.handle(
            ALICE, HERE, f'collect-file "{COLLECTABLE}" on device:{name} --reason "INC-4 sample"'
        )
        assert reply.request is not None and reply.request.action_label == f"Collect file {COLLECTABLE}"
        await stack.chatops.decide(BOB, reply.request.id, approve=True)
        assert await stack.wait_for_state(reply.request.id, {"succeeded"}) == "succeeded"
        (line,) = await notes(stack, reply.request.id)
        assert line.startswith(f"File collected from {name}. Download it within 30 minutes")
        link = line.split(": ", 1)[1].split(" ")[0]
        async with httpx.AsyncClient() as http:
            assert COLLECTABLE.encode() in (await http.get(link)).content
        body = next(e.body for e in stack.sim.request_log if e.family == "live_response")
        assert body["Commands"] == [{"type": "GetFile", "params": [{"key": "Path", "value": COLLECTABLE}]}]

        status = (await stack.chatops.handle(ALICE, HERE, f"status {reply.request.id}")).text
        fresh = status.splitlines()[-1]
        assert fresh.startswith("File collected from") and fresh.split(": ", 1)[1].split(" ")[0] != link
        elsewhere = await stack.chatops.handle(ALICE, Origin("console", "other"), f"status {reply.request.id}")
        assert "File collected" not in elsewhere.text
        async with stack.db.sessions() as session:
            audited = list(await session.scalars(select(AuditEntry.text).where(AuditEntry.event == "action.result")))
        assert len(audited) == 1 and "/_sim/blobs/" in (audited[0] or "") and "sig=" not in (audited[0] or "")
    assert "File collected from" in out.getvalue()


async def test_collect_file_of_a_missing_file_fails_with_mdes_reason() -> None:
    async with Stack.start(devices=100) as stack:
        name = next(
            m["computerDnsName"]
            for m in stack.sim.tenant.machines.values()
            if m["osPlatform"] == "Windows11"
            and m["healthStatus"] == "Active"
            and m["id"] not in stack.sim.tenant.device_files
        )
        reply = await stack.chatops.handle(ALICE, HERE, f'collect-file "C:\\nope.txt" on device:{name} --reason r')
        assert reply.request is not None
        await stack.chatops.decide(BOB, reply.request.id, approve=True)
        assert await stack.wait_for_state(reply.request.id, {"failed"}) == "failed"
        assert await notes(stack, reply.request.id) == []
