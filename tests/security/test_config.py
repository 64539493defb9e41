"""Settings an operator can get wrong: a malformed ``DATABASE_URL`` is one line that names the setting and
never the password, from every command that opens the database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PASSWORD = "hunter2-Secret"


def run(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "MDE_AUTH": "static",
        "MDE_STATIC_TOKEN": "t",
        "PORT": "0",
        "LOG_FORMAT": "text",
    }
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://mde:{PASSWORD}@db.internal:notaport/mde",
        f"mde:{PASSWORD}@db.internal/mde",
        f"postgresql://mde:{PASSWORD}@db.internal:99999/mde",
    ],
    ids=["port-not-a-number", "no-scheme", "port-out-of-range"],
)
@pytest.mark.parametrize("command", [("serve",), ("db", "upgrade"), ("audit", "export")], ids=" ".join)
def test_a_malformed_database_url_is_one_line_without_the_password(url: str, command: tuple[str, ...]) -> None:
    result = run(*command, database_url=url)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "DATABASE_URL" in lines[0], result.stderr[-2000:]
    assert PASSWORD not in result.stderr + result.stdout
