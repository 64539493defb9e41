"""The digest of pyproject.toml's dependency tables, written into each lock by scripts/lock and compared by
``scripts/lock --check`` (in .ci/run): a lock made from other dependencies fails CI with the command to run."""

from __future__ import annotations

import hashlib
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LOCKS = tuple(ROOT / "requirements" / f"{name}.txt" for name in ("build", "runtime", "dev"))
PREFIX = "# pyproject dependencies sha256: "


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def digest() -> str:
    pyproject = _pyproject()
    project = pyproject["project"]
    spec = {key: project.get(key) for key in ("requires-python", "dependencies", "optional-dependencies")}
    spec["build-system"] = pyproject["build-system"]["requires"]
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def check() -> int:
    want = PREFIX + digest()
    stale = [p for p in LOCKS if not p.exists() or want not in p.read_text(encoding="utf-8").splitlines()]
    for path in stale:
        name = path.relative_to(ROOT)
        print(f"{name} was not made from pyproject.toml's current dependencies: run scripts/lock", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    if sys.argv[1:] == ["digest"]:
        print(digest())
        sys.exit(0)
    if sys.argv[1:] == ["build-requires"]:
        print("\n".join(_pyproject()["build-system"]["requires"]))
        sys.exit(0)
    sys.exit(check())
