"""Tests share code through ``tests/support/`` only: no test module imports a conftest or another test module.

Fixtures stay in ``conftest.py`` files, where pytest finds them by name; a helper, class or constant imported
from a conftest or a test module ties one test file to another's internals and hides where shared data lives.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _shared_from_elsewhere(module: str) -> bool:
    parts = module.split(".")
    return parts[0] == "tests" and (parts[1:2] != ["support"])


def test_tests_import_shared_code_from_tests_support_only() -> None:
    found = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            modules = []
            if isinstance(node, ast.ImportFrom):
                modules = ["." * node.level + (node.module or "")] if node.level else [node.module or ""]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            for module in modules:
                if module.startswith(".") or _shared_from_elsewhere(module):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {module}")
    assert not found, found
