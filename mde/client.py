"""An async MDE API client that reads like the API (house style 3).

``await client.isolate(machine_id, comment=..., isolation_type=...)`` mirrors the documented endpoint;
documented field names are mapped once in ``mde.models``; every call spends its family's budget in
the rate limiter; errors are the types in ``mde.errors``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime
from typing import Any
from urllib.parse import quote as urlquote

import httpx

from mde import odata
from mde.auth import TokenProvider
from mde.errors import (
    ActionAlreadyPending,
    AuthenticationFailed,
    BadRequest,
    MdeError,
    MdeServerError,
    NotFound,
    PermissionDenied,
    RateLimited,
    UnsupportedDevice,
)
from mde.models import (
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
from mde.ratelimit import RateLimiter
from mde.retry import RetryPolicy, parse_retry_after

log = logging.getLogger(__name__)

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
}


class MdeClient:
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
        return f"MdeClient(base_url={self.base_url!r})"

    async def __aenter__(self) -> MdeClient:
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
    ) -> httpx.Response:
        """Send one call: limiter, token, bounded retries; returns a 2xx response or raises an MdeError."""
        attempt, waited, refreshed = 0, 0.0, False
        while True:
            grant = await self.limiter.acquire(family) if self.limiter is not None else None
            token = await self._tokens.get_token()
            try:
                try:
                    response = await self._http.request(
                        method, path, params=params, json=json, headers={"Authorization": f"Bearer {token}"}
                    )
                finally:
                    if grant is not None and self.limiter is not None:
                        await self.limiter.complete(grant)
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
                    self.limiter.penalize(family, error.retry_after or 1.0)
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

    async def _json(self, method: str, path: str, family: str, **kw: Any) -> Any:
        response = await self._request(method, path, family, **kw)
        return response.json() if response.content else None

    # -- devices ----------------------------------------------------------------------------------------
    async def iter_machines(self, *, filter: str | None = None, page_size: int = MAX_PAGE) -> AsyncIterator[Machine]:
        """Stream every matching machine page by page (``@odata.nextLink``, or ``$skip`` when absent)."""
        page_size = max(1, min(MAX_PAGE, page_size))
        params: dict[str, Any] | None = {"$top": page_size}
        if filter:
            params = {**(params or {}), "$filter": filter}
        path: str = "/api/machines"
        skip = 0
        while True:
            try:
                data = await self._json("GET", path, "machines_read", params=params)
            except NotFound:
                return  # documented: 404 when there are no (more) machines
            values = data.get("value") or []
            for index, item in enumerate(values):
                if index and index % YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # a 10,000-row page must not hold the event loop (chat acks wait on it)
                yield Machine.from_api(item)
            next_link = data.get("@odata.nextLink")
            if next_link:
                path, params = _relative(next_link, self.base_url), None
                continue
            if len(values) < page_size:
                return
            skip += page_size
            params = {"$top": page_size, "$skip": skip, **({"$filter": filter} if filter else {})}
            path = "/api/machines"

    async def list_machines(self, *, filter: str | None = None) -> list[Machine]:
        return [m async for m in self.iter_machines(filter=filter)]

    async def get_machine(self, id_or_name: str) -> Machine:
        return Machine.from_api(
            await self._json("GET", f"/api/machines/{urlquote(id_or_name, safe='')}", "machines_read")
        )

    async def find_machines_by_name(self, name: str) -> list[Machine]:
        """Exact, case-insensitive match on computerDnsName; a short name matches ``name.<domain>``.

        Never "contains": a substring match isolates the wrong machines (shared reference §11).
        """
        wanted = name.strip().lower()
        found = [m async for m in self.iter_machines(filter=odata.name_eq(name.strip()))]
        if "." not in wanted:
            found += [m async for m in self.iter_machines(filter=odata.name_startswith(name.strip() + "."))]
        unique = {m.id: m for m in found}
        return [
            m
            for m in unique.values()
            if m.computer_dns_name.lower() == wanted or m.computer_dns_name.lower().split(".", 1)[0] == wanted
        ]

    def iter_machines_by_tag(self, tag: str) -> AsyncIterator[Machine]:
        return self.iter_machines(filter=odata.tag_eq(tag))

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

    async def iter_machines_in_group(self, group_name: str) -> AsyncIterator[Machine]:
        """The API cannot filter on rbacGroupName, so this matches client-side, case-insensitively."""
        wanted = group_name.strip().lower()
        async for machine in self.iter_machines():
            if (machine.rbac_group_name or "").lower() == wanted:
                yield machine

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
        status: str | None = None,
        created_after: datetime | None = None,
        top: int = MAX_PAGE,
    ) -> list[MachineAction]:
        """Many actions in one call (newest first), so a poller needs no GET per action."""
        clauses = []
        if machine_id:
            clauses.append(odata.field_eq("machineId", machine_id))
        if type:
            clauses.append(odata.field_eq("type", type))
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
            if not next_link or len(out) >= top:
                return out[:top] if top else out
            path, params = _relative(next_link, self.base_url), None

    async def cancel_machine_action(self, action_id: str, *, comment: str) -> MachineAction:
        return MachineAction.from_api(
            await self._json(
                "POST",
                f"/api/machineactions/{urlquote(action_id, safe='')}/cancel",
                "machineactions_read",
                json={"Comment": comment},
            )
        )

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
            path, params = _relative(next_link, self.base_url), None

    async def delete_indicator(self, indicator_id: str) -> None:
        """delete-ti-indicator-by-id.md: 204, or 404 (raised as NotFound) when it is gone already."""
        await self._request("DELETE", f"/api/indicators/{urlquote(indicator_id, safe='')}", "indicators")

    # -- advanced hunting -------------------------------------------------------------------------------
    async def run_advanced_query(self, query: str) -> HuntingResult:
        data = await self._json("POST", "/api/advancedqueries/run", "advanced_queries", json={"Query": query})
        return HuntingResult(schema=list(data.get("Schema") or []), results=list(data.get("Results") or []))


#: rows parsed between two yields to the event loop
YIELD_EVERY = 200


def _relative(link: str, base: str) -> str:
    """nextLink is absolute; keep it on the configured host (never follow a link to elsewhere)."""
    url = httpx.URL(link)
    base_url = httpx.URL(base)
    if url.host and (url.host, url.port) != (base_url.host, base_url.port):
        raise MdeServerError(f"MDE returned a nextLink to another host ({url.host}); refusing to follow it")
    return url.raw_path.decode("ascii")


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
