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
    #: only calls whose path contains this are throttled by the burst (e.g. "/cancel"); None: every call
    burst_429_match: str | None = None
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
    #: the bearer token Microsoft Graph accepts (runHuntingQuery); None: the same as ``token``. A Graph token is not
    #: an MDE token: "access tokens … are not interchangeable" across clouds and services (Graph deployments.md)
    graph_token: str | None = None
    #: Graph application roles the Graph token carries; None means every role
    graph_roles: frozenset[str] | None = None
    #: serve MDE's own advanced hunting endpoint as before its retirement (a tenant not yet cut off); by default it
    #: answers like a retired API (run-advanced-query-api.md: "Retirement began in January 2026")
    legacy_hunting: bool = False
    #: scheme://host[:port] that ``@odata.nextLink`` points at instead of the host asked (MDE answering a regional
    #: host with a link to another of its hosts); None: the simulator's own address
    next_link_base: str | None = None
    #: compare $filter strings case-sensitively (OData's eq compares strings as they are; MDE does not document it)
    case_sensitive_filters: bool = False
