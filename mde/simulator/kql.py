"""A tiny, documented KQL subset so hunting-query targets and schedules can be tested end to end.

Tables: ``DeviceInfo`` (DeviceId, DeviceName, OSPlatform, MachineGroup, HealthStatus) and
``DeviceNetworkEvents`` (DeviceId, DeviceName, LocalPort, RemotePort, ActionType). Operators:
``where`` (==, !=, contains, startswith, has, in (...), and, or), ``project``, ``distinct``,
``take``/``limit``, ``summarize by``. Anything else is a 400 with the unsupported part named.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from typing import Any

from mde.simulator.tenant import Tenant


class KqlError(ValueError):
    pass


_CMP = re.compile(r"^\s*(\w+)\s*(==|!=|=~|contains|startswith|has|in)\s*(.+?)\s*$", re.IGNORECASE | re.DOTALL)


def _rows(tenant: Tenant, table: str) -> list[dict[str, Any]]:
    if table == "DeviceInfo":
        return [
            {
                "DeviceId": m["id"],
                "DeviceName": m["computerDnsName"],
                "OSPlatform": m["osPlatform"],
                "MachineGroup": m["rbacGroupName"],
                "HealthStatus": m["healthStatus"],
            }
            for m in tenant.machines.values()
        ]
    if table == "DeviceNetworkEvents":
        return [dict(r) for r in tenant.network_events]
    raise KqlError(f"table '{table}' is not available in the simulator (use DeviceInfo or DeviceNetworkEvents)")


def _literal(text: str) -> Any:
    text = text.strip()
    if text[:1] in ("'", '"') and text[-1:] == text[:1]:
        return text[1:-1]
    try:
        return int(text)
    except ValueError:
        raise KqlError(f"cannot read the value {text!r}") from None


def _split_top(text: str, word: str) -> list[str]:
    """Split on ' and ' / ' or ' outside quotes and parentheses."""
    parts, depth, quote, start, i = [], 0, "", 0, 0
    pattern = f" {word} "
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and text[i : i + len(pattern)].lower() == pattern:
            parts.append(text[start:i])
            i += len(pattern)
            start = i
            continue
        i += 1
    parts.append(text[start:])
    return parts


def _condition(text: str) -> Callable[[dict[str, Any]], bool]:
    ors = _split_top(text, "or")
    if len(ors) > 1:
        preds = [_condition(p) for p in ors]
        return lambda row: any(p(row) for p in preds)
    ands = _split_top(text, "and")
    if len(ands) > 1:
        preds = [_condition(p) for p in ands]
        return lambda row: all(p(row) for p in preds)
    stripped = text.strip()
    if stripped.startswith("(") and stripped.endswith(")"):
        return _condition(stripped[1:-1])
    match = _CMP.match(stripped)
    if not match:
        raise KqlError(f"unsupported condition: {stripped!r}")
    column, op, raw = match.group(1), match.group(2).lower(), match.group(3)
    if op == "in":
        inner = raw.strip()
        if not (inner.startswith("(") and inner.endswith(")")):
            raise KqlError("in needs a parenthesised list")
        values = {str(_literal(v)).lower() for v in inner[1:-1].split(",") if v.strip()}
        return lambda row: str(row.get(column, "")).lower() in values
    value = _literal(raw)

    def test(row: dict[str, Any]) -> bool:
        cell = row.get(column)
        if op == "==":
            return bool(cell == value)
        if op == "!=":
            return bool(cell != value)
        a, b = str(cell or "").lower(), str(value).lower()
        if op == "=~":
            return a == b
        if op == "contains":
            return b in a
        if op == "startswith":
            return a.startswith(b)
        return b in re.split(r"[^a-z0-9]+", a)  # has: whole term

    return test


def run_query(tenant: Tenant, query: str) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    stages = [s.strip() for s in query.strip().split("|")]
    if not stages or not stages[0]:
        raise KqlError("the query is empty")
    rows = _rows(tenant, stages[0])
    columns = list(rows[0].keys()) if rows else []
    if not columns:
        columns = ["DeviceId", "DeviceName"]
    for stage in stages[1:]:
        op, _, rest = stage.partition(" ")
        op = op.lower()
        if op == "where":
            pred = _condition(rest)
            rows = [r for r in rows if pred(r)]
        elif op in ("project", "distinct"):
            columns = [c.strip() for c in rest.split(",") if c.strip()]
            rows = [{c: r.get(c) for c in columns} for r in rows]
            if op == "distinct":
                rows = list({tuple(r.items()): r for r in rows}.values())
        elif op == "summarize" and rest.strip().lower().startswith("by "):
            columns = [c.strip() for c in rest.strip()[3:].split(",")]
            rows = list({tuple((c, r.get(c)) for c in columns): {c: r.get(c) for c in columns} for r in rows}.values())
        elif op in ("take", "limit"):
            try:
                rows = rows[: int(shlex.split(rest)[0])]
            except (ValueError, IndexError):
                raise KqlError(f"{op} needs a number") from None
        else:
            raise KqlError(f"the operator '{op}' is not supported by the simulator")
    schema = [{"Name": c, "Type": "Int32" if c.endswith("Port") else "String"} for c in columns]
    return schema, rows
