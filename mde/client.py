"""An async MDE API client that reads like the API (house style 3).

``await client.isolate(machine_id, comment=..., isolation_type=...)`` mirrors the documented endpoint;
documented field names are mapped once in ``mde.models``; every call spends its family's budget in
the rate limiter; errors are the types in ``mde.errors``. ``ApiClient`` is the transport both this client
and the Microsoft Graph client (``mde.graph``) share.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Sequence
from contextlib import aclosing
from contextvars import ContextVar
from datetime import datetime
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import quote as urlquote

import httpx

from mde import odata
from mde.auth import TokenProvider
from mde.errors import (
    ActionAlreadyPending,
    AuthenticationFailed,
    BadRequest,
    HuntingApiRetired,
    MdeError,
    MdeServerError,
    NotFound,
    PermissionDenied,
    RateLimited,
    SubmissionWithdrawn,
    UnsupportedDevice,
    UntrustedNextLink,
)
from mde.gcpause import cyclic_gc_paused
from mde.models import (
    Alert,
    AlertStatus,
    FileStats,
    HuntingResult,
    Indicator,
    IndicatorAction,
    IndicatorSeverity,
    IndicatorType,
    IsolationType,
    LogonUser,
    Machine,
    MachineAction,
    ScanType,
    TagAction,
    format_datetime,
)
from mde.ratelimit import Grant, RateLimiter
from mde.retry import RetryPolicy, parse_retry_after

if TYPE_CHECKING:
    from mde.graph import GraphClient

log = logging.getLogger(__name__)

#: set by a caller around an action POST: asked after the rate limiter's grant, just before sending; False
#: withdraws the call (``SubmissionWithdrawn``), so nothing waiting for budget goes out after a cancel
SEND_GATE: ContextVar[Callable[[], bool] | None] = ContextVar("mde_send_gate", default=None)

BULK_TAG_MAX = 500
MAX_PAGE = 10000
#: the permission each family's calls need, named in PermissionDenied (shared reference §2)
ROLE_FOR_PATH = {
    "isolate": "Machine.Isolate",
    "unisolate": "Machine.Isolate",
    "runAntiVirusScan": "Machine.Scan",
    "restrictCodeExecution": "Machine.RestrictExecution",
    "unrestrictCodeExecution": "Machine.RestrictExecution",
    "collectInvestigationPackage": "Machine.CollectForensics",
    "tags": "Machine.ReadWrite.All",
    "AddOrRemoveTagForMultipleMachines": "Machine.ReadWrite.All",
    "cancel": "Machine.Isolate",
    "run": "AdvancedQuery.Read.All",
    # post-ti-indicator.md, get-ti-indicators-collection.md, delete-ti-indicator-by-id.md: Ti.ReadWrite (the
    # indicators this app created) or Ti.ReadWrite.All (every indicator); the bot needs only its own
    "indicators": "Ti.ReadWrite",
    "StopAndQuarantineFile": "Machine.StopAndQuarantine",  # stop-and-quarantine-file.md
    "runliveresponse": "Machine.LiveResponse",  # run-live-response.md
    "stats": "File.Read.All",  # get-file-statistics.md
    "logonusers": "User.Read.All",  # get-machine-log-on-users.md
    # get-user-related-machines.md: Machine.ReadWrite.All is the only application permission listed
    "users/machines": "Machine.ReadWrite.All",
    "runHuntingQuery": "ThreatHunting.Read.All",
    # Alert.Read.All or Alert.ReadWrite.All: https://learn.microsoft.com/defender-endpoint/api/get-alerts,
    # https://learn.microsoft.com/defender-endpoint/api/get-machine-related-alerts
    "alerts": "Alert.Read.All",
}
#: "The maximal execution time of a single request is 200 seconds" (run-advanced-query-api.md)
LEGACY_HUNTING_S = 200.0
#: what a query: target or a schedule says when the legacy hunting endpoint is gone
RETIRED_HUNTING = (
    "MDE's own advanced hunting API (HUNTING_API=mde) no longer answers: Microsoft retired it for Microsoft Graph "
    "(message center MC1220762). Set HUNTING_API=graph and grant the app ThreatHunting.Read.All on Microsoft Graph."
)


class ApiClient:
    """One API host: rate-limited, authenticated calls with bounded retries, answers mapped to ``mde.errors``."""

    def __init__(
        self,
        base_url: str,
        token_provider: TokenProvider,
        *,
        limiter: RateLimiter | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        on_response: Callable[[str, int], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        #: observation hook (metrics): called with (family, HTTP status) for every answer MDE sends
        self.on_response = on_response
        self.limiter = limiter
        self.retry = retry or RetryPolicy()
        self._tokens = token_provider
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout),
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "mde-chatops"},
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._tokens.close()

    # -- transport --------------------------------------------------------------------------------------
    async def _request(
        self,
        method: str,
        path: str,
        family: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        creates_action: bool = False,
        timeout: float | None = None,
        also: tuple[str, ...] = (),
        priority: bool = False,
        retry_throttled: bool = True,
    ) -> httpx.Response:
        """Send one call: limiter, token, bounded retries; returns a 2xx response or raises an MdeError.

        ``timeout``: this call's own limit in seconds (advanced hunting runs for minutes), else the client's.
        ``also``: further families the call is counted against (a cancel: its own and, since MDE does not
        say whether cancels share the actions' budget, the actions' too). ``priority``: ahead of the
        ordinary callers of those families. ``retry_throttled=False``: a 429 is raised at once (after the
        family pause) so the caller can say it waits.
        """
        attempt, waited, refreshed = 0, 0.0, False
        while True:
            grants = await self._grants((family, *also), priority)
            gate = SEND_GATE.get() if creates_action else None
            if gate is not None and not gate():
                for grant in grants:
                    await self.limiter.complete(grant)  # type: ignore[union-attr]
                raise SubmissionWithdrawn(f"{method} {path} withdrawn before it was sent")
            token = await self._tokens.get_token()
            try:
                try:
                    response = await self._http.request(
                        method,
                        path,
                        params=params,
                        json=json,
                        headers={"Authorization": f"Bearer {token}"},
                        timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else httpx.Timeout(timeout),
                    )
                finally:
                    for grant in grants:
                        await self.limiter.complete(grant)  # type: ignore[union-attr]
            except httpx.TimeoutException as exc:
                if creates_action and not isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
                    # the POST may have been executed: the caller must look before submitting again
                    raise MdeServerError(
                        f"timeout on {method} {path}; the outcome is unknown", outcome_unknown=True
                    ) from None
                error: MdeError = MdeServerError(f"timeout on {method} {path}")
            except httpx.TransportError as exc:
                if creates_action and not isinstance(exc, httpx.ConnectError):
                    raise MdeServerError(
                        f"connection lost on {method} {path}; the outcome is unknown", outcome_unknown=True
                    ) from None
                error = MdeServerError(f"cannot reach MDE ({type(exc).__name__})")
            else:
                if self.on_response is not None:
                    self.on_response(family, response.status_code)
                if response.status_code < 400:
                    return response
                if response.status_code == 401 and not refreshed:
                    refreshed = True
                    self._tokens.invalidate()
                    continue
                error = _error_from(response, path)
                if creates_action and isinstance(error, MdeServerError):
                    # a gateway error may come after MDE created the action: never resend blindly, the caller
                    # looks for the action (by its comment tag) before submitting again
                    error.outcome_unknown = True
                    raise error
                if isinstance(error, RateLimited) and self.limiter is not None:
                    for name in (family, *also):
                        self.limiter.penalize(name, error.retry_after or 1.0)
                if isinstance(error, RateLimited) and not retry_throttled:
                    raise error
            if not error.retryable or attempt + 1 >= self.retry.max_attempts:
                raise error
            delay = (error.retry_after or 1.0) if isinstance(error, RateLimited) else self.retry.backoff(attempt)
            if waited + delay > self.retry.max_total_s:
                raise error
            attempt += 1
            waited += delay
            log.info("MDE %s %s: %s; retry %d in %.2fs", method, path, type(error).__name__, attempt, delay)
            if not isinstance(error, RateLimited) or self.limiter is None:
                await asyncio.sleep(delay)

    async def _grants(self, families: tuple[str, ...], priority: bool) -> list[Grant]:
        """A slot in each family; if waiting is interrupted, the slots already held are given back."""
        grants: list[Grant] = []
        if self.limiter is None:
            return grants
        try:
            for name in families:
                # only a priority call passes the flag: limiters without it (wrappers, tests) keep working
                grant = await (self.limiter.acquire(name, priority=True) if priority else self.limiter.acquire(name))
                grants.append(grant)
        except BaseException:
            for grant in grants:
                await self.limiter.complete(grant)
            raise
        return grants

    async def _json(self, method: str, path: str, family: str, **kw: Any) -> Any:
        response = await self._request(method, path, family, **kw)
        with cyclic_gc_paused():  # a machine page is megabytes of JSON: see mde.gcpause
            return response.json() if response.content else None


class MdeClient(ApiClient):
    def __init__(
        self,
        base_url: str,
        token_provider: TokenProvider,
        *,
        graph: GraphClient | None = None,
        api_hosts: Iterable[str] = (),
        **kw: Any,
    ) -> None:
        """``graph``: advanced hunting goes through Microsoft Graph (the default in settings; None: MDE's own,
        retired endpoint). ``api_hosts``: the documented MDE hosts of the cloud an ``@odata.nextLink`` may
        lead to, besides ``base_url``'s own host."""
        super().__init__(base_url, token_provider, **kw)
        self.graph = graph
        self.api_hosts = frozenset(h.lower() for h in api_hosts)
        #: device group name (lower-case) -> rbacGroupId, learnt once: MDE filters on the id only
        self._group_ids: dict[str, int] = {}

    async def aclose(self) -> None:
        await super().aclose()
        if self.graph is not None:
            await self.graph.aclose()

    def _next_url(self, link: str) -> str:
        """Where ``@odata.nextLink`` leads, if that is this host or a documented MDE host of the cloud.

        MDE may answer a regional host's listing with a link to another of its hosts; the token goes to
        the documented hosts only, over the same scheme, and never to anywhere else.
        """
        url = httpx.URL(link)
        if not url.host:
            return url.raw_path.decode("ascii")
        base = httpx.URL(self.base_url)
        same = (url.host, url.port) == (base.host, base.port)
        documented = url.host.lower() in self.api_hosts and url.port in (None, base.port)
        if url.scheme != base.scheme or not (same or documented):
            raise UntrustedNextLink(
                f"MDE sent a next-page link to {url.scheme}://{url.host}, which is not a documented MDE API host "
                "for this cloud (MDE_CLOUD), so the listing stopped there and the token was not sent to it."
            )
        return str(url)

    # -- devices ----------------------------------------------------------------------------------------
    async def iter_machines(
        self, *, filter: str | None = None, page_size: int = MAX_PAGE, prefetch: bool = False
    ) -> AsyncGenerator[Machine, None]:
        """Stream every matching machine page by page (``@odata.nextLink``, or ``$skip`` when absent).

        Lazy by default: the next page is asked for only when this one is used up, so a caller that stops
        early (a group's id, the doctor's probe) costs no call it did not need. ``prefetch=True`` is for a
        caller that reads the whole listing: page k+1 is requested while page k is mapped and consumed, one
        request ahead and never more, so MDE serving a 10,000-device page overlaps our decoding (issue 18).
        Either way each page is one limited call, and a failure (a refused nextLink, an error on the page)
        is raised where the lazy listing raises it: after every device of the pages before it.
        """
        page_size = max(1, min(MAX_PAGE, page_size))
        params: dict[str, Any] | None = {"$top": page_size}
        if filter:
            params = {**(params or {}), "$filter": filter}
        skip, linked = 0, False
        ahead: asyncio.Task[Any] | None = None
        try:
            data = await self._machine_page("/api/machines", params)
            while data is not None:
                values = data.get("value") or []
                refused: UntrustedNextLink | None = None
                following: tuple[str, dict[str, Any] | None] | None = None
                next_link = data.get("@odata.nextLink")
                del data
                if next_link:
                    try:
                        following, linked = (self._next_url(next_link), None), True
                    except UntrustedNextLink as exc:
                        refused = exc  # raised once this page's devices are out, as the lazy listing does
                # a server that pages by nextLink says it is done by leaving the link out; counting $skip from 0
                # after following links read every page after the first again (5.5 times 100,000 devices)
                elif not linked and len(values) >= page_size:
                    skip += page_size
                    following = (
                        "/api/machines",
                        {"$top": page_size, "$skip": skip, **({"$filter": filter} if filter else {})},
                    )
                if prefetch and following is not None:
                    ahead = asyncio.create_task(self._machine_page(*following))
                for start in range(0, len(values), PARSE_CHUNK):
                    if start or ahead is not None:
                        # a 10,000-row page must not hold the event loop (chat acks wait on it), and the page
                        # fetched ahead is sent and read in these gaps (the chunks themselves never await)
                        await asyncio.sleep(0)
                    with cyclic_gc_paused():
                        machines = [Machine.from_api(item) for item in values[start : start + PARSE_CHUNK]]
                    for machine in machines:
                        yield machine
                if refused is not None:
                    raise refused
                if following is None:
                    return
                if ahead is not None:
                    task, ahead = ahead, None
                    data = await task
                else:
                    data = await self._machine_page(*following)
        finally:
            if ahead is not None:  # the caller left before the page fetched ahead was used
                ahead.cancel()
                await asyncio.wait([ahead])
                if not ahead.cancelled():
                    ahead.exception()  # retrieved: an unused page's failure is nobody's error

    async def _machine_page(self, path: str, params: dict[str, Any] | None) -> Any:
        """One page of ``GET /api/machines``; None when MDE answers 404 (documented: no (more) machines)."""
        try:
            return await self._json("GET", path, "machines_read", params=params)
        except NotFound:
            return None

    async def list_machines(self, *, filter: str | None = None) -> list[Machine]:
        return [m async for m in self.iter_machines(filter=filter)]

    async def get_machine(self, id_or_name: str) -> Machine:
        return Machine.from_api(
            await self._json("GET", f"/api/machines/{urlquote(id_or_name, safe='')}", "machines_read")
        )

    async def has_any_machine(self) -> bool:
        """False when the unfiltered listing is 404: MDE has no device at all for this token (get-machines.md)."""
        try:
            await self._json("GET", "/api/machines", "machines_read", params={"$top": 1})
        except NotFound:
            return False
        return True

    async def find_machines_by_name(self, name: str) -> list[Machine]:
        """Exact, case-insensitive match on computerDnsName; a short name matches ``name.<domain>``.

        Never "contains": a substring match isolates the wrong machines (shared reference §11). Whether MDE's
        ``eq`` and ``startswith`` ignore case is undocumented, so one call asks for the name as typed, in lower
        and in upper case, and the comparison that decides is made here, case-insensitively.
        """
        typed = name.strip()
        wanted = typed.lower()
        spellings = list(dict.fromkeys((typed, wanted, typed.upper())))
        clauses = [odata.name_eq(s) for s in spellings]
        if "." not in wanted:
            clauses += [odata.name_startswith(s + ".") for s in spellings]
        found = {m.id: m async for m in self.iter_machines(filter=odata.or_(clauses))}
        return [
            m
            for m in found.values()
            if m.computer_dns_name.lower() == wanted or m.computer_dns_name.lower().split(".", 1)[0] == wanted
        ]

    def iter_machines_by_tag(self, tag: str, *, prefetch: bool = False) -> AsyncIterator[Machine]:
        """The tag's devices; ``prefetch``: the caller reads them all (see ``iter_machines``)."""
        return self.iter_machines(filter=odata.tag_eq(tag), prefetch=prefetch)

    async def find_machines_by_tag(self, tag: str, *, use_starts_with: bool = False) -> list[Machine]:
        data = await self._json(
            "GET",
            "/api/machines/findbytag",
            "machines_read",
            params={"tag": tag, "useStartsWithFilter": str(use_starts_with).lower()},
        )
        return [Machine.from_api(m) for m in data.get("value") or []]

    async def find_machines_by_ip(self, ip: str, timestamp: datetime) -> list[Machine]:
        import ipaddress

        ipaddress.ip_address(ip)  # refuse anything that is not an address before it reaches the URL
        stamp = timestamp.strftime("%Y-%m-%dT%H:%M:%SZ")
        data = await self._json("GET", f"/api/machines/findbyip(ip='{ip}',timestamp={stamp})", "machines_read")
        return [Machine.from_api(m) for m in data.get("value") or []]

    async def group_id(self, group_name: str) -> int | None:
        """The device group's ``rbacGroupId``, learnt once per process (None: no device is in such a group).

        MDE filters on ``rbacGroupId`` but not on ``rbacGroupName`` (get-machines.md) and documents no API to
        list device groups, so the first listed device of the group names the id, and the listing stops there.
        """
        wanted = group_name.strip().lower()
        if wanted not in self._group_ids:
            async with aclosing(self.iter_machines()) as machines:
                async for machine in machines:
                    if machine.rbac_group_id is not None and machine.rbac_group_name:
                        self._group_ids.setdefault(machine.rbac_group_name.lower(), machine.rbac_group_id)
                    if wanted in self._group_ids:
                        break
        return self._group_ids.get(wanted)

    async def iter_machines_in_group(self, group_name: str, *, prefetch: bool = False) -> AsyncIterator[Machine]:
        """The group's devices, filtered server-side on its id; the name is compared case-insensitively.

        ``prefetch``: the caller reads them all (see ``iter_machines``); learning the id stays lazy."""
        wanted = group_name.strip().lower()
        for attempt in range(2):
            group_id = await self.group_id(group_name)
            if group_id is None:
                return
            found = False
            async for machine in self.iter_machines(filter=odata.group_id_eq(group_id), prefetch=prefetch):
                if (machine.rbac_group_name or "").lower() == wanted:
                    found = True
                    yield machine
            if found or attempt:
                return
            self._group_ids.pop(wanted, None)  # the group was renamed or emptied since: learn its id again

    # -- tags -------------------------------------------------------------------------------------------
    async def add_machine_tag(self, machine_id: str, tag: str) -> Machine:
        return await self._tag(machine_id, tag, TagAction.ADD)

    async def remove_machine_tag(self, machine_id: str, tag: str) -> Machine:
        return await self._tag(machine_id, tag, TagAction.REMOVE)

    async def _tag(self, machine_id: str, tag: str, action: TagAction) -> Machine:
        data = await self._json(
            "POST",
            f"/api/machines/{urlquote(machine_id, safe='')}/tags",
            "machine_tags",
            json={"Value": tag, "Action": action.value},
        )
        return Machine.from_api(data)

    async def add_or_remove_tag_for_multiple_machines(
        self, tag: str, action: TagAction, machine_ids: Iterable[str]
    ) -> list[Machine]:
        ids = list(dict.fromkeys(machine_ids))
        out: list[Machine] = []
        for start in range(0, len(ids), BULK_TAG_MAX):
            chunk = ids[start : start + BULK_TAG_MAX]
            data = await self._json(
                "POST",
                "/api/machines/AddOrRemoveTagForMultipleMachines",
                "machine_tags",
                json={"Value": tag, "Action": action.value, "MachineIds": chunk},
            )
            out.extend(Machine.from_api(m) for m in (data or {}).get("value") or [])
        return out

    # -- machine actions --------------------------------------------------------------------------------
    async def _action(self, machine_id: str, path: str, body: dict[str, Any]) -> MachineAction:
        data = await self._json(
            "POST",
            f"/api/machines/{urlquote(machine_id, safe='')}/{path}",
            "machine_actions",
            json=body,
            creates_action=True,
        )
        return MachineAction.from_api(data)

    async def isolate(
        self, machine_id: str, *, comment: str, isolation_type: IsolationType = IsolationType.FULL
    ) -> MachineAction:
        return await self._action(
            machine_id, "isolate", {"Comment": comment, "IsolationType": IsolationType(isolation_type).value}
        )

    async def unisolate(self, machine_id: str, *, comment: str) -> MachineAction:
        return await self._action(machine_id, "unisolate", {"Comment": comment})

    async def run_antivirus_scan(
        self, machine_id: str, *, comment: str, scan_type: ScanType = ScanType.QUICK
    ) -> MachineAction:
        return await self._action(
            machine_id, "runAntiVirusScan", {"Comment": comment, "ScanType": ScanType(scan_type).value}
        )

    async def restrict_code_execution(self, machine_id: str, *, comment: str) -> MachineAction:
        return await self._action(machine_id, "restrictCodeExecution", {"Comment": comment})

    async def unrestrict_code_execution(self, machine_id: str, *, comment: str) -> MachineAction:
        return await self._action(machine_id, "unrestrictCodeExecution", {"Comment": comment})

    async def collect_investigation_package(self, machine_id: str, *, comment: str) -> MachineAction:
        return await self._action(machine_id, "collectInvestigationPackage", {"Comment": comment})

    async def stop_and_quarantine_file(self, machine_id: str, *, sha1: str, comment: str) -> MachineAction:
        """stop-and-quarantine-file.md: the body takes ``Sha1`` only (no SHA-256 or MD5)."""
        return await self._action(machine_id, "StopAndQuarantineFile", {"Comment": comment, "Sha1": sha1})

    async def run_live_response(
        self, machine_id: str, *, comment: str, commands: list[dict[str, Any]]
    ) -> MachineAction:
        """run-live-response.md: one session per device at a time, 10 calls per minute (own family)."""
        data = await self._json(
            "POST",
            f"/api/machines/{urlquote(machine_id, safe='')}/runliveresponse",
            "live_response",
            json={"Comment": comment, "Commands": commands},
            creates_action=True,
        )
        return MachineAction.from_api(data)

    async def get_file(self, machine_id: str, *, path: str, comment: str) -> MachineAction:
        """A live response session with one ``GetFile`` command (index 0)."""
        return await self.run_live_response(
            machine_id, comment=comment, commands=[{"type": "GetFile", "params": [{"key": "Path", "value": path}]}]
        )

    async def get_live_response_result_download_link(self, action_id: str, index: int = 0) -> str:
        """get-live-response-result.md: a link valid for 30 minutes; calling again makes a fresh one."""
        data = await self._json(
            "GET",
            f"/api/machineactions/{urlquote(action_id, safe='')}/GetLiveResponseResultDownloadLink(index={int(index)})",
            "machineactions_read",
        )
        return str((data or {}).get("value") or "")

    async def get_machine_action(self, action_id: str) -> MachineAction:
        return MachineAction.from_api(
            await self._json("GET", f"/api/machineactions/{urlquote(action_id, safe='')}", "machineactions_read")
        )

    async def list_machine_actions(
        self,
        *,
        machine_id: str | None = None,
        type: str | None = None,
        types: Sequence[str] = (),
        status: str | None = None,
        created_after: datetime | None = None,
        top: int = MAX_PAGE,
        every_page: bool = False,
    ) -> list[MachineAction]:
        """Many actions in one call (newest first), so a poller needs no GET per action; ``every_page``
        follows ``@odata.nextLink`` to the end (reconciliation) instead of stopping after ``top``."""
        clauses = []
        if machine_id:
            clauses.append(odata.field_eq("machineId", machine_id))
        if type:
            clauses.append(odata.field_eq("type", type))
        if types:
            clauses.append(f"({odata.or_(odata.field_eq('type', t) for t in types)})")
        if status:
            clauses.append(odata.field_eq("status", status))
        if created_after is not None:
            clauses.append(f"creationDateTimeUtc gt {format_datetime(created_after)}")
        params: dict[str, Any] | None = {"$top": max(1, min(MAX_PAGE, top))}
        if clauses:
            params = {**(params or {}), "$filter": " and ".join(clauses)}
        out: list[MachineAction] = []
        path = "/api/machineactions"
        while True:
            try:
                data = await self._json("GET", path, "machineactions_read", params=params)
            except NotFound:
                return out
            out.extend(MachineAction.from_api(a) for a in data.get("value") or [])
            next_link = data.get("@odata.nextLink")
            if not next_link or (len(out) >= top and not every_page):
                return out if every_page else out[:top] if top else out
            path, params = self._next_url(next_link), None

    async def cancel_machine_action(
        self, action_id: str, *, comment: str, priority: bool = False, retry_throttled: bool = True
    ) -> MachineAction:
        """cancel-machine-action.md: 100 calls/min of its own; counted against the actions' budget as well,
        because whether MDE shares them is not documented (UNCONFIRMED): zero 429s either way."""
        return MachineAction.from_api(
            await self._json(
                "POST",
                f"/api/machineactions/{urlquote(action_id, safe='')}/cancel",
                "machineactions_read",
                json={"Comment": comment},
                also=("machine_actions",),
                priority=priority,
                retry_throttled=retry_throttled,
            )
        )

    # -- alerts -----------------------------------------------------------------------------------------------
    async def list_alerts(
        self, *, active_only: bool = True, page_size: int = MAX_PAGE, max_pages: int = 10, retry_throttled: bool = True
    ) -> list[Alert]:
        """The tenant's alerts in one listing, not one call per device (https://learn.microsoft.com/defender-endpoint/api/get-alerts):
        ``$top`` 10,000 a page, ``@odata.nextLink`` followed; ``active_only`` asks for ``status ne 'Resolved'``
        (``status`` is filterable; New, InProgress and Unknown stay). At most ``max_pages`` pages: a caller that
        only ranks devices must not wait on a tenant's whole alert history. ``retry_throttled=False``: a 429 is
        raised at once (the family still pauses) for a caller that would rather go on without the alerts."""
        params: dict[str, Any] | None = {"$top": max(1, min(MAX_PAGE, page_size))}
        if active_only:
            params = {**(params or {}), "$filter": f"status ne {odata.quote(AlertStatus.RESOLVED)}"}
        path, out = "/api/alerts", list[Alert]()
        for _ in range(max(1, max_pages)):
            data = await self._json("GET", path, "alerts_read", params=params, retry_throttled=retry_throttled) or {}
            out.extend(Alert.from_api(a) for a in data.get("value") or [])
            next_link = data.get("@odata.nextLink")
            if not next_link:
                break
            path, params = self._next_url(next_link), None
        return out

    async def list_machine_alerts(self, machine_id: str) -> list[Alert]:
        """Every alert of one device (404 for an unknown device): https://learn.microsoft.com/defender-endpoint/api/get-machine-related-alerts."""
        data = await self._json("GET", f"/api/machines/{urlquote(machine_id, safe='')}/alerts", "alerts_read")
        return [Alert.from_api(a) for a in (data or {}).get("value") or []]

    # -- users ------------------------------------------------------------------------------------------------
    async def get_user_related_machines(self, user: str) -> list[Machine]:
        """get-user-related-machines.md: the id is the account name, not the UPN (alice, not alice@contoso.com);
        an unknown user gives an empty list, not 404."""
        account = user.split("@", 1)[0].split("\\")[-1]
        data = await self._json("GET", f"/api/users/{urlquote(account, safe='')}/machines", "machines_read")
        return [Machine.from_api(m) for m in (data or {}).get("value") or []]

    async def get_machine_logon_users(self, machine_id: str) -> list[LogonUser]:
        """get-machine-log-on-users.md: who logged on to a device, with first and last seen."""
        data = await self._json("GET", f"/api/machines/{urlquote(machine_id, safe='')}/logonusers", "machines_read")
        return [LogonUser.from_api(u) for u in (data or {}).get("value") or []]

    # -- files -------------------------------------------------------------------------------------------------
    async def get_file_stats(self, file_hash: str, *, look_back_hours: int = 720) -> FileStats | None:
        """get-file-statistics.md: organization prevalence in one call; None when MDE never saw the file."""
        try:
            data = await self._json(
                "GET",
                f"/api/files/{urlquote(file_hash, safe='')}/stats",
                "files_read",
                params={"lookBackHours": max(1, min(720, look_back_hours))},
            )
        except NotFound:
            return None
        return FileStats.from_api(data or {})

    async def get_file_related_machines(self, sha1: str) -> list[Machine]:
        """get-file-related-machines.md: the devices MDE saw a file on; SHA-1 only; unknown file: empty."""
        data = await self._json("GET", f"/api/files/{urlquote(sha1, safe='')}/machines", "files_read")
        return [Machine.from_api(m) for m in (data or {}).get("value") or []]

    # -- indicators ------------------------------------------------------------------------------------------
    async def submit_indicator(
        self,
        *,
        value: str,
        indicator_type: IndicatorType,
        action: IndicatorAction,
        title: str,
        description: str,
        expiration_time: datetime | None = None,
        severity: IndicatorSeverity | None = None,
        generate_alert: bool | None = None,
        rbac_group_names: list[str] | None = None,
        application: str | None = None,
    ) -> Indicator:
        """post-ti-indicator.md: submit, or update the indicator with the same type and value (so a retry is
        harmless). ``Audit`` needs ``generateAlert`` true."""
        body: dict[str, Any] = {
            "indicatorValue": value,
            "indicatorType": IndicatorType(indicator_type).value,
            "action": IndicatorAction(action).value,
            "title": title,
            "description": description,
        }
        if expiration_time is not None:
            body["expirationTime"] = expiration_time.strftime("%Y-%m-%dT%H:%M:%SZ")
        if severity is not None:
            body["severity"] = IndicatorSeverity(severity).value
        if generate_alert is not None:
            body["generateAlert"] = generate_alert
        if rbac_group_names:
            body["rbacGroupNames"] = list(rbac_group_names)
        if application:
            body["application"] = application
        return Indicator.from_api(await self._json("POST", "/api/indicators", "indicators", json=body))

    async def list_indicators(
        self,
        *,
        application: str | None = None,
        value: str | None = None,
        indicator_type: IndicatorType | None = None,
        top: int = MAX_PAGE,
    ) -> list[Indicator]:
        """get-ti-indicators-collection.md: $filter on application, indicatorValue, indicatorType and more."""
        clauses = []
        if application:
            clauses.append(odata.field_eq("application", application))
        if value:
            clauses.append(odata.field_eq("indicatorValue", value))
        if indicator_type is not None:
            clauses.append(odata.field_eq("indicatorType", IndicatorType(indicator_type).value))
        params: dict[str, Any] | None = {"$top": max(1, min(MAX_PAGE, top))}
        if clauses:
            params = {**(params or {}), "$filter": " and ".join(clauses)}
        out: list[Indicator] = []
        path = "/api/indicators"
        while True:
            data = await self._json("GET", path, "indicators", params=params)
            out.extend(Indicator.from_api(i) for i in (data or {}).get("value") or [])
            next_link = (data or {}).get("@odata.nextLink")
            if not next_link or len(out) >= top:
                return out[:top]
            path, params = self._next_url(next_link), None

    async def delete_indicator(self, indicator_id: str) -> None:
        """delete-ti-indicator-by-id.md: 204, or 404 (raised as NotFound) when it is gone already."""
        await self._request("DELETE", f"/api/indicators/{urlquote(indicator_id, safe='')}", "indicators")

    # -- advanced hunting -------------------------------------------------------------------------------
    async def hunt(self, query: str) -> HuntingResult:
        """Run a KQL query: through Microsoft Graph when configured (the default), else MDE's retired endpoint."""
        if self.graph is not None:
            return await self.graph.run_hunting_query(query)
        return await self.run_advanced_query(query)

    async def run_advanced_query(self, query: str) -> HuntingResult:
        """MDE's own ``POST /api/advancedqueries/run``: being retired since January 2026 (run-advanced-query-api.md)."""
        try:
            data = await self._json(
                "POST", "/api/advancedqueries/run", "advanced_queries", json={"Query": query}, timeout=LEGACY_HUNTING_S
            )
        except (NotFound, BadRequest) as exc:
            if exc.status in (404, 410):
                raise HuntingApiRetired(RETIRED_HUNTING, status=exc.status, code=exc.code, target=exc.target) from None
            raise
        return HuntingResult.from_api(data or {})


#: rows parsed between two yields to the event loop
YIELD_EVERY = 200
#: machines mapped in one collector pause (mde.gcpause) between two yields to the event loop: ~10 ms of work; 200
#: a pause still set off two full collections per 100,000-device listing, 2,000 none
PARSE_CHUNK = 2000


def _role_key(path: str) -> str:
    """The ROLE_FOR_PATH key of a path: its last segment (``/api/indicators/7`` and ``/api/users/x/machines``
    are named by their resource)."""
    parts = path.rstrip("/").split("/")
    if "indicators" in parts:
        return "indicators"
    if len(parts) >= 3 and parts[-3] == "users":
        return "users/machines"
    return parts[-1]


def _error_from(response: httpx.Response, path: str) -> MdeError:
    status = response.status_code
    try:
        body = response.json().get("error") or {}
    except ValueError:
        body = {}
    code = body.get("code")
    message = body.get("message") or response.reason_phrase or f"HTTP {status}"
    target = body.get("target")
    kw: dict[str, Any] = {"status": status, "code": code, "target": target}
    if status == 400:
        lowered = str(message).lower()
        if code == "ActiveRequestAlreadyExists" or "already in progress" in lowered:
            return ActionAlreadyPending(message, **kw)
        if code in ("OsPlatformNotSupported", "ClientVersionNotSupported"):
            return UnsupportedDevice(message, **kw)
        return BadRequest(message, **kw)
    if status == 401:
        return AuthenticationFailed(message, **kw)
    if status == 403:
        role = ROLE_FOR_PATH.get(_role_key(path), "Machine.Read.All")
        return PermissionDenied(message, missing_role=role, **kw)
    if status == 404:
        return NotFound(message, **kw)
    if status == 429:
        return RateLimited(message, retry_after=parse_retry_after(response.headers.get("Retry-After")), **kw)
    if status >= 500:
        return MdeServerError(message, **kw)
    return BadRequest(message, **kw)
