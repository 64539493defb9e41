"""The simulator's $filter evaluator: what MDE's filters mean, row by row (it tests every row on every page)."""

from __future__ import annotations

from typing import Any

import pytest

from mde.simulator.odata import compile_filter

FIELDS = {"computerDnsName": "str", "osBuild": "num", "aadDeviceId": "str", "lastSeen": "date", "rbacGroupId": "num"}
ROWS: list[dict[str, Any]] = [
    {"computerDnsName": "WS-1", "osBuild": 19045, "aadDeviceId": None, "machineTags": ["Finance", "VIP"]},
    {"computerDnsName": "ws-2", "osBuild": 22631, "aadDeviceId": "x", "machineTags": []},
    {"computerDnsName": "srv-3", "osBuild": None, "aadDeviceId": "y", "machineTags": ["finance"], "rbacGroupId": "7"},
]


def names(expr: str, *, case_sensitive: bool = False) -> list[str]:
    test = compile_filter(expr, FIELDS, {"machineTags"}, case_sensitive=case_sensitive)
    return [r["computerDnsName"] for r in ROWS if test(r)]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("machineTags/any(t: t eq 'FINANCE')", ["WS-1", "srv-3"]),
        ("machineTags/any(t: t ne 'finance')", ["WS-1"]),
        ("machineTags/all(t: t eq 'finance')", ["ws-2", "srv-3"]),  # all() of nothing holds
        ("machineTags/all(t: t ne 'vip')", ["ws-2", "srv-3"]),
        ("not machineTags/any(t: t eq 'vip')", ["ws-2", "srv-3"]),
        ("computerDnsName eq 'ws-1'", ["WS-1"]),
        ("computerDnsName ne 'ws-1'", ["ws-2", "srv-3"]),
        ("aadDeviceId eq null", ["WS-1"]),
        ("aadDeviceId ne null", ["ws-2", "srv-3"]),
        ("osBuild eq 19045", ["WS-1"]),
        ("osBuild eq '22631'", ["ws-2"]),  # compared as text when the types differ
        ("rbacGroupId eq 7", ["srv-3"]),
        ("osBuild gt 20000", ["ws-2"]),
        ("machineTags/any(t: t eq 'finance') and osBuild eq null", ["srv-3"]),
    ],
)
def test_filters_select_the_rows_they_name(expr: str, expected: list[str]) -> None:
    assert names(expr) == expected


def test_case_sensitive_filters_compare_text_as_it_is() -> None:
    assert names("machineTags/any(t: t eq 'finance')", case_sensitive=True) == ["srv-3"]
    assert names("computerDnsName eq 'ws-1'", case_sensitive=True) == []


def test_a_nested_any_reads_its_own_item() -> None:
    rows = [{"machineTags": ["a", "b"]}]
    test = compile_filter("machineTags/any(t: machineTags/any(u: u eq 'b') and t eq 'a')", {}, {"machineTags"})
    assert [test(r) for r in rows] == [True]
