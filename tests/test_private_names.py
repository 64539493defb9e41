"""No module imports another module's private names (``from x import _y``): a name shared is a public name."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("approvals", "bot", "mde")


def test_no_private_name_is_imported_from_another_module() -> None:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PACKAGES:
                    private = [a.name for a in node.names if a.name.startswith("_")]
                    if private:
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.module} {private}")
    assert not found, found
