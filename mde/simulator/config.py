"""Simulator settings: tenant shape, documented limits, action timing, fault injection."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SimulatorConfig:
    devices: int = 200
    seed: int = 0
    #: every time constant (rate-limit windows, action durations, Retry-After) is divided by this
    time_scale: float = 1.0
    #: the bearer token the simulator accepts; None disables the check
    token: str | None = "sim-token"
    #: app roles the token carries; None means every role
    roles: frozenset[str] | None = None
    minute_limit: int = 100
    hour_limit: int = 1500
    hunting_minute_limit: int = 45
    hunting_hour_limit: int = 1500
    action_pending_s: float = 5.0
    action_in_progress_s: float = 10.0
    offline_timeout_s: float = 3 * 86400
    error_rate: float = 0.0
    latency_s: float = 0.0
    slow_action_rate: float = 0.0
    never_finish_rate: float = 0.0
    fail_action_rate: float = 0.0
    burst_429: int = 0
    #: fraction of seeded devices that are Inactive (offline: their actions time out)
    inactive_rate: float = 0.05
    page_size: int = 10000
