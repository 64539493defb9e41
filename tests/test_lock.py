"""``scripts/lock --check``: the locks were made from pyproject.toml's current dependencies, or CI stops with
the command that refreshes them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _check(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(tree / "scripts" / "lockfile.py")], capture_output=True, text=True, check=False
    )


def _copy(tmp_path: Path) -> Path:
    for name in ("pyproject.toml", "scripts/lockfile.py", "requirements"):
        source, target = ROOT / name, tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy)(source, target)
    return tmp_path


def test_the_locks_match_pyproject_and_every_pin_has_a_hash(tmp_path: Path) -> None:
    assert _check(_copy(tmp_path)).returncode == 0
    for lock in (ROOT / "requirements").glob("*.txt"):
        pins = [line for line in lock.read_text().splitlines() if "==" in line]
        assert pins and all(line.endswith("\\") for line in pins), f"{lock.name}: a pin without --hash"


def test_a_dependency_changed_without_relocking_fails_and_names_the_command(tmp_path: Path) -> None:
    tree = _copy(tmp_path)
    pyproject = tree / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"pyyaml>=6",', '"pyyaml>=6",\n    "leftpad>=1",'))
    result = _check(tree)
    assert result.returncode == 1
    assert "requirements/runtime.txt" in result.stderr and "run scripts/lock" in result.stderr


def test_a_change_outside_the_dependency_tables_needs_no_relock(tmp_path: Path) -> None:
    tree = _copy(tmp_path)
    pyproject = tree / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("line-length = 120", "line-length = 100"))
    assert _check(tree).returncode == 0
