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
    #: run-live-response.md: 10 calls per minute
    live_response_minute_limit: int = 10
    action_pending_s: float = 5.0
    action_in_progress_s: float = 10.0
    offline_timeout_s: float = 3 * 86400
    error_rate: float = 0.0
    latency_s: float = 0.0
    slow_action_rate: float = 0.0
    never_finish_rate: float = 0.0
    fail_action_rate: float = 0.0
    burst_429: int = 0
    #: Retry-After (simulated seconds) of the burst's 429s; None: one simulated second
    burst_429_retry_after_s: float | None = None
    #: the next N API calls answer 503 before doing anything (MDE down for a while)
    burst_5xx: int = 0
    #: the next N action POSTs are executed, then their answer is held back ``slow_answer_s`` (real seconds)
    slow_answers: int = 0
    slow_answer_s: float = 0.0
    #: machine ids whose actions never leave Pending/InProgress (until ``offline_timeout_s``)
    stuck_machines: frozenset[str] = frozenset()
    #: fraction of seeded devices that are Inactive (offline: their actions time out)
    inactive_rate: float = 0.05
    page_size: int = 10000
