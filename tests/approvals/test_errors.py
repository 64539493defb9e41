"""One error tree for approvals/ (httpx's _exceptions.py): every error a person reads is a UserError."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import approvals.errors as errors
from approvals.errors import ParseError, UserError

ROOT = Path(__file__).resolve().parents[2]


def test_every_error_of_the_tree_is_a_user_error_shown_as_its_message() -> None:
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, Exception)]
    assert len(classes) >= 7
    for cls in classes:
        assert issubclass(cls, UserError), cls
        assert str(cls("Say why.")) == "Say why." == cls("Say why.").message


def test_no_module_of_approvals_defines_an_exception_outside_the_tree() -> None:
    outside = []
    for path in sorted((ROOT / "approvals").rglob("*.py")):
        if path.name == "errors.py" or "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = {b.id for b in node.bases if isinstance(b, ast.Name)}
                if bases & {"Exception", "ValueError", "RuntimeError", "UserError"} or node.name.endswith("Error"):
                    outside.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert not outside, outside


def test_a_parse_error_keeps_where_it_went_wrong() -> None:
    exc = ParseError("'isolat' is not a command.", token="isolat", position=0, suggestion="isolate")
    assert (exc.message, exc.token, exc.position, exc.suggestion) == (
        "'isolat' is not a command.",
        "isolat",
        0,
        "isolate",
    )
    assert isinstance(exc, ValueError)
