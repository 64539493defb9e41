"""The command line: the scripted demo end to end, migrations, audit export, and bad input without tracebacks."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import run


def test_the_scripted_demo_runs_end_to_end() -> None:
    result = run("demo", "--script", "examples/demo.mde", "--devices", "300")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "You can't approve your own request" in out
    assert 'Did you mean tag:"Finance Laptops"?' in out
    assert "Summary of #1: Succeeded" in out
    assert "Canary batch of 2 succeeded" in out
    assert "Summary of #3: Succeeded" in out
    assert "Isolated now: 2 device(s)." in out and "Isolated now: 1 device(s)." in out
    assert "Drift: ws-0007.contoso.local was released outside the bot by mallory@contoso.com" in out
    assert "Request #7 · Isolate (Selective) · Waiting for approval" in out
    assert "Request #8 · Isolate (Selective) · release proposed 8h after isolation · Waiting for approval" in out
    assert "Planned end reached: request #9 releases ws-0010.contoso.local (one approval)." in out
    assert "Summary of #9: Succeeded" in out
    assert "Traceback" not in out + result.stderr


def test_db_upgrade_then_audit_export(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    assert run("db", "upgrade", "--database", url).returncode == 0
    export = run("audit", "export", "--format", "csv", "--since", "7d", "--database", url)
    assert export.returncode == 0 and export.stdout.startswith("id,at,event")
    register = run("audit", "export", "--containments", "--format", "csv", "--database", url)
    assert register.returncode == 0 and register.stdout.startswith("id,machine_id,device_name")
    assert "exported 0 containments" in register.stderr


def test_bad_input_is_one_sentence_not_a_traceback(tmp_path: Path) -> None:
    bad_time = run("audit", "export", "--since", "last tuesday")
    assert bad_time.returncode == 2 and "is not a time" in bad_time.stderr and "Traceback" not in bad_time.stderr
    missing_script = run("demo", "--script", str(tmp_path / "nope.mde"))
    assert missing_script.returncode == 2 and "nope.mde" in missing_script.stderr
    assert "Traceback" not in missing_script.stderr
    unreachable = run("audit", "export", "--database", "postgresql://nobody@127.0.0.1:1/none")
    assert unreachable.returncode == 2 and "cannot" in unreachable.stderr and "Traceback" not in unreachable.stderr
