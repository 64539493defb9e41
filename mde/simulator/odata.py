"""A small, real OData ``$filter`` parser and evaluator (tokenizer + recursive descent; no eval).

Covers what the MDE API documents: eq/ne/gt/ge/lt/le, and/or/not, parentheses, startswith(),
``machineTags/any(t: t eq '…')`` and single-quoted literals with ``''`` escaping. A value injected
inside a correctly escaped literal stays a literal; a broken literal is a syntax error (400).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


class ODataError(ValueError):
    """Invalid $filter; the server answers 400 ODataError with this message."""


@dataclass(frozen=True)
class Tok:
    kind: str  # name, str, num, date, op, punct, end
    value: Any
    pos: int


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:\d{2})?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUM = re.compile(r"-?\d+(\.\d+)?")
KEYWORDS = {"eq", "ne", "gt", "ge", "lt", "le", "and", "or", "not"}


def tokenize(text: str) -> list[Tok]:
    toks: list[Tok] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch == "'":
            j, buf = i + 1, []
            while True:
                if j >= len(text):
                    raise ODataError(f"unterminated string literal at position {i}")
                if text[j] == "'":
                    if j + 1 < len(text) and text[j + 1] == "'":
                        buf.append("'")
                        j += 2
                        continue
                    break
                buf.append(text[j])
                j += 1
            toks.append(Tok("str", "".join(buf), i))
            i = j + 1
            continue
        if ch in "()/,:":
            toks.append(Tok("punct", ch, i))
            i += 1
            continue
        date = _DATE.match(text, i)
        if date and (date.group(1) or date.group(4)):
            toks.append(Tok("date", _parse_date(date.group(0), i), i))
            i = date.end()
            continue
        num = _NUM.match(text, i)
        if num:
            toks.append(Tok("num", float(num.group(0)) if "." in num.group(0) else int(num.group(0)), i))
            i = num.end()
            continue
        name = _NAME.match(text, i)
        if name:
            word = name.group(0)
            kind = "op" if word.lower() in KEYWORDS else "name"
            toks.append(Tok(kind, word.lower() if kind == "op" else word, i))
            i = name.end()
            continue
        raise ODataError(f"unexpected character {ch!r} at position {i}")
    toks.append(Tok("end", None, len(text)))
    return toks


def _parse_date(text: str, pos: int) -> datetime:
    value = text.replace("Z", "+00:00")
    if len(value) == 10 or value[10:11] == "+":
        value = value[:10] + "T00:00:00" + value[10:]
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ODataError(f"invalid date {text!r} at position {pos}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


Predicate = Callable[[dict[str, Any]], bool]
Getter = Callable[[dict[str, Any]], Any]


class Parser:
    def __init__(self, text: str, fields: dict[str, str], collections: set[str]) -> None:
        self.toks = tokenize(text)
        self.i = 0
        self.fields = fields  # filter name -> kind ("str", "num", "date")
        self.collections = collections
        self.lambda_var: str | None = None
        #: the item the innermost any()/all() is looking at: read by its variable, set by its loop (no row copy)
        self.lambda_item: list[Any] = []
        #: compare strings case-insensitively (False: as they are, OData's reading of eq)
        self.fold = True

    def peek(self) -> Tok:
        return self.toks[self.i]

    def take(self, kind: str | None = None, value: Any = None) -> Tok:
        tok = self.toks[self.i]
        if (kind and tok.kind != kind) or (value is not None and tok.value != value):
            want = value or kind
            raise ODataError(f"expected {want!r} at position {tok.pos}, found {tok.value!r}")
        self.i += 1
        return tok

    def parse(self) -> Predicate:
        pred = self.or_expr()
        if self.peek().kind != "end":
            raise ODataError(f"unexpected {self.peek().value!r} at position {self.peek().pos}")
        return pred

    def or_expr(self) -> Predicate:
        parts = [self.and_expr()]
        while self.peek().kind == "op" and self.peek().value == "or":
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else (lambda row: any(p(row) for p in parts))

    def and_expr(self) -> Predicate:
        parts = [self.unary()]
        while self.peek().kind == "op" and self.peek().value == "and":
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda row: all(p(row) for p in parts))

    def unary(self) -> Predicate:
        if self.peek().kind == "op" and self.peek().value == "not":
            self.take()
            inner = self.unary()
            return lambda row: not inner(row)
        return self.primary()

    def primary(self) -> Predicate:
        tok = self.peek()
        if tok.kind == "punct" and tok.value == "(":
            self.take()
            inner = self.or_expr()
            self.take("punct", ")")
            return inner
        if tok.kind == "name" and self.toks[self.i + 1].value == "(":
            return self.function()
        if tok.kind == "name" and self.toks[self.i + 1].value == "/":
            return self.lambda_expr()
        left = self.operand()
        op = self.take("op")
        if op.value not in ("eq", "ne", "gt", "ge", "lt", "le"):
            raise ODataError(f"expected a comparison at position {op.pos}")
        right = self.operand()
        return _compare(op.value, left, right, self.fold)

    def operand(self) -> Getter:
        tok = self.take()
        if tok.kind in ("str", "num", "date"):
            return _Const(tok.value)
        if tok.kind == "name":
            if tok.value == self.lambda_var:
                item = self.lambda_item
                return lambda _row: item[0]
            if tok.value in ("true", "false", "null"):
                return _Const({"true": True, "false": False, "null": None}[tok.value])
            if tok.value not in self.fields:
                raise ODataError(f"property '{tok.value}' cannot be used in $filter")
            name, kind = tok.value, self.fields[tok.value]
            if kind == "date":
                return lambda row: _parse_date(row[name], 0) if row.get(name) else None
            return lambda row: row.get(name)
        raise ODataError(f"unexpected {tok.value!r} at position {tok.pos}")

    def function(self) -> Predicate:
        name = self.take("name")
        if name.value not in ("startswith", "endswith", "contains"):
            raise ODataError(f"function '{name.value}' is not supported")
        self.take("punct", "(")
        field_ = self.operand()
        self.take("punct", ",")
        value = self.operand()
        self.take("punct", ")")
        test = {"startswith": str.startswith, "endswith": str.endswith, "contains": str.__contains__}[name.value]
        fold = self.fold
        return lambda row: _text_test(test, field_(row), value(row), fold)

    def lambda_expr(self) -> Predicate:
        coll = self.take("name")
        if coll.value not in self.collections:
            raise ODataError(f"'{coll.value}' is not a collection that can be filtered")
        self.take("punct", "/")
        kind = self.take("name")
        if kind.value not in ("any", "all"):
            raise ODataError(f"expected any or all at position {kind.pos}")
        self.take("punct", "(")
        var = self.take("name")
        self.take("punct", ":")
        outer = self.lambda_var, self.lambda_item
        self.lambda_var, self.lambda_item = var.value, [None]
        current = self.lambda_item
        inner = self.or_expr()
        self.lambda_var, self.lambda_item = outer
        self.take("punct", ")")
        field_, wanted = coll.value, kind.value == "any"  # any: the first match decides; all: the first miss

        def test(row: dict[str, Any]) -> bool:
            for item in row.get(field_) or []:
                current[0] = item
                if bool(inner(row)) is wanted:
                    return wanted
            return not wanted

        return test


def _norm(value: Any, fold: bool = True) -> Any:
    return value.lower() if fold and isinstance(value, str) else value


def _text_test(test: Callable[[str, str], bool], left: Any, right: Any, fold: bool = True) -> bool:
    if not isinstance(left, str) or not isinstance(right, str):
        return False
    return test(left.lower(), right.lower()) if fold else test(left, right)


class _Const:
    """A literal operand: a getter that ignores the row, whose value a comparison can prepare once."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __call__(self, _row: dict[str, Any]) -> Any:
        return self.value


def _compare(op: str, left: Getter, right: Getter, fold: bool = True) -> Predicate:
    if op in ("eq", "ne") and isinstance(right, _Const):
        return _equals_constant(left, _norm(right.value, fold), fold, negate=op == "ne")

    def check(row: dict[str, Any]) -> bool:
        a, b = _norm(left(row), fold), _norm(right(row), fold)
        if op == "eq":
            return bool(a == b or (a is not None and b is not None and str(a) == str(b)))
        if op == "ne":
            return not (a == b or (a is not None and b is not None and str(a) == str(b)))
        if a is None or b is None:
            return False
        try:
            return bool({"gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[op])
        except TypeError:
            return False

    return check


def _equals_constant(left: Getter, b: Any, fold: bool, *, negate: bool) -> Predicate:
    """``_compare``'s eq/ne against a literal, with the literal folded once: a listing tests every row per page."""
    text = None if b is None else str(b)

    def check(row: dict[str, Any]) -> bool:
        a = left(row)
        if fold and isinstance(a, str):
            a = a.lower()
        return bool(a == b or (a is not None and text is not None and str(a) == text)) is not negate

    return check


def compile_filter(
    text: str, fields: dict[str, str], collections: set[str] | None = None, *, case_sensitive: bool = False
) -> Predicate:
    parser = Parser(text, fields, collections or set())
    parser.fold = not case_sensitive
    return parser.parse()
