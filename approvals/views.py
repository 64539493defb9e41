"""Platform-neutral read models that surfaces render (Block Kit, Adaptive Cards, console text).

The request service builds these from storage; surfaces never query tables themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from approvals.verbs import Effect, Verb, is_tenant_wide


@dataclass(frozen=True, slots=True)
class DeviceRow:
    machine_id: str
    name: str
    os_platform: str | None = None
    health_status: str | None = None
    last_seen: datetime | None = None
    tags: tuple[str, ...] = ()
    group: str | None = None
    #: an ``approvals.requests.models.DeviceState`` value
    state: str | None = None
    action_id: str | None = None
    error: str | None = None
    #: a warning that did not exclude the device (e.g. "Hyper-V host: isolating it cuts off its guests")
    warning: str | None = None
    #: why the device is in the set beyond the target, e.g. "alice last logon 2026-12-02 08:49 UTC"
    note: str | None = None


@dataclass(frozen=True, slots=True)
class ExclusionRow:
    """A device the target matched but the request will not touch, and why."""

    name: str
    reason: str  # human sentence: "protected: tagged 'Restricted security operations'"
    machine_id: str | None = None
    kind: str = "excluded"  # protected | unsupported | already | inactive | ambiguous | duplicate | not_found


@dataclass(frozen=True, slots=True)
class DecisionRow:
    actor_label: str
    approve: bool
    at: datetime
    reason: str | None = None
    break_glass: bool = False


@dataclass(frozen=True, slots=True)
class OutcomeCount:
    """How many devices ended in one (state, error): what a cancel report counts."""

    state: str | None
    error: str | None
    count: int


@dataclass(frozen=True, slots=True)
class DeviceCounts:
    """A request's devices as counts, and the few rows that matter, instead of every row.

    ``build_view`` reads these with GROUP BY and LIMITed queries, so a view (built for the card, for a click's
    answer and for every card refresh) costs about the same at 100,000 devices as at 100 (issue 18). Each list
    holds the first rows by name, a bounded number; "show all" and the CSV page through storage instead.
    """

    #: the devices the request acts on (a protected device waiting for break glass is an exclusion instead)
    total: int
    #: (``DeviceState`` value, or None before approval; devices) over ``total``
    by_state: tuple[tuple[str | None, int], ...] = ()
    #: devices that ended without succeeding (a summary lists each once); ``not_succeeded_total`` counts all
    not_succeeded: tuple[DeviceRow, ...] = ()
    not_succeeded_total: int = 0
    #: devices with a warning that did not exclude them (a Hyper-V host…); ``warned_total`` counts all
    warned: tuple[DeviceRow, ...] = ()
    warned_total: int = 0
    exclusions_total: int = 0
    #: the kinds among all exclusions: "protected" is what offers break glass
    exclusion_kinds: frozenset[str] = frozenset()
    #: a cancelled request's devices per (state, error): its cancel report
    outcomes: tuple[OutcomeCount, ...] = ()


@dataclass(frozen=True, slots=True)
class ProgressView:
    total: int
    submitted: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    cancelled: int = 0
    #: actions of a cancelled request still being cancelled in MDE; of them, waiting out a 429's Retry-After
    cancelling: int = 0
    cancel_waiting: int = 0
    eta_seconds: float | None = None
    #: approved, and a worker is still creating the jobs of this many devices (the click answered first)
    preparing: int = 0

    @property
    def done(self) -> int:
        return self.succeeded + self.failed + self.skipped + self.cancelled

    def sentence(self) -> str:
        if self.preparing:
            return f"preparing the jobs of {self.preparing} device(s), 0 of {self.total} submitted"
        text = f"{self.submitted} of {self.total} submitted, {self.done} finished"
        if self.failed:
            text += f" ({self.failed} failed)"
        if self.cancelling:
            text += f", cancelling {self.cancelling} in MDE"
        if self.cancel_waiting:
            text += f" ({self.cancel_waiting} throttled by MDE: waiting for its Retry-After, then retried)"
        if self.eta_seconds is not None and self.done < self.total:
            minutes = max(1, round(self.eta_seconds / 60))
            text += f", about {minutes} min left"
        return text


@dataclass(frozen=True, slots=True)
class RequestView:
    id: int
    action: Verb
    action_label: str  # "Isolate (Full)", "Add tag 'Compromised'"
    state: str  # approvals.requests.states.RequestState value
    requester_label: str
    reason: str | None
    target_text: str  # the target expression as typed
    #: the first devices by name (every device of a small request); ``counts`` has the totals
    devices: tuple[DeviceRow, ...]
    #: the first exclusions (every one of a small request); ``counts.exclusions_total`` counts them all
    exclusions: tuple[ExclusionRow, ...]
    counts: DeviceCounts
    required_approvals: int
    decisions: tuple[DecisionRow, ...]
    created_at: datetime
    expires_at: datetime | None
    progress: ProgressView | None = None
    dry_run: bool = False
    canary: int | None = None
    incident_id: str | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)
    #: the submission order and when each risk class is all submitted (large device actions only)
    order_note: str | None = None
    #: the requester's identity key (``teams:<object id>``…), to recognise them in a stored conversation
    requester_key: str = ""

    @property
    def device_count(self) -> int:
        return self.counts.total

    @property
    def exclusion_count(self) -> int:
        return self.counts.exclusions_total

    @property
    def excludes_protected(self) -> bool:
        """A protected device is left out: the card offers break glass."""
        return "protected" in self.counts.exclusion_kinds

    @property
    def approvals_given(self) -> int:
        return sum(1 for d in self.decisions if d.approve)

    @property
    def rejection(self) -> DecisionRow | None:
        """Who rejected the request, and why (a rejected card must say both)."""
        return next((d for d in self.decisions if not d.approve), None)

    @property
    def short_id(self) -> str:
        return f"#{self.id}"

    @property
    def devices_label(self) -> str:
        """What the card says under "Devices": a count, "per run" for a schedule (it acts on each run's), or
        "tenant-wide" for an indicator (it applies to every device, or the groups its card names)."""
        if self.action.effect is Effect.ACTIVATES_SCHEDULE:
            return "per run"
        if is_tenant_wide(self.action):
            return "tenant-wide"
        return str(self.counts.total)


@dataclass(frozen=True, slots=True)
class Reply:
    """What a surface shows in answer to a command or a button click."""

    text: str
    #: shown only to the person who asked (help, previews, errors, refused clicks)
    ephemeral: bool = True
    #: set when the reply is a request card to post publicly (and keep updating)
    request: RequestView | None = None
    #: a refusal or error (surfaces may style it differently)
    error: bool = False


@dataclass(frozen=True, slots=True)
class IncidentView:
    """An incident notification as surfaces render it (the war-room thread's root)."""

    id: int
    source: str  # sentinel | graph
    external_id: str
    title: str
    severity: str
    status: str
    closed: bool
    product: str | None
    url: str | None
    devices: tuple[str, ...]  # DNS names, or MDE ids where the name is unknown
    rules: tuple[str, ...] = ()
    mention: str | None = None
    #: the Sentinel workspace the incident number belongs to ("" for Graph)
    workspace: str = ""

    @property
    def source_label(self) -> str:
        return {"sentinel": "Microsoft Sentinel", "graph": "Defender XDR"}.get(self.source, self.source)

    def headline(self) -> str:
        state = "closed" if self.closed else self.status
        where = f" in {self.workspace}" if self.workspace else ""
        return f"{self.severity.upper()} incident {self.external_id}{where}: {self.title} ({state})"
