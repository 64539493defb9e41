"""How MDE writes a time in JSON: seven fractional digits and a Z, e.g. 2026-01-02T03:04:05.1234560Z."""

from __future__ import annotations

from datetime import datetime


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"
