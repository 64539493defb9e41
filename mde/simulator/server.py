"""The MDE simulator: a real aiohttp server following the documented API (see shared reference §3–§9)."""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import web

from mde.simulator import liveresponse
from mde.simulator.actions import FINAL, SimAction, new_action
from mde.simulator.alerts import ALERT_FIELDS, ALERT_ROLES
from mde.simulator.config import SimulatorConfig
from mde.simulator.errors import ApiError
from mde.simulator.errors import required as _required
from mde.simulator.indicators import FIELDS as INDICATOR_FIELDS
from mde.simulator.indicators import IndicatorStore
from mde.simulator.kql import KqlError, run_query
from mde.simulator.limits import FAMILIES, Quota
from mde.simulator.odata import ODataError, compile_filter
from mde.simulator.platforms import refusal
from mde.simulator.portal import PORTAL_ACTIONS, portal_action
from mde.simulator.tenant import Tenant, make_machine, seed_tenant
from mde.simulator.timefmt import iso

if TYPE_CHECKING:
    from mde.client import MdeClient

MACHINE_FIELDS = {
    "computerDnsName": "str",
    "id": "str",
    "version": "str",
    "deviceValue": "str",
    "aadDeviceId": "str",
    "lastSeen": "date",
    "exposureLevel": "str",
    "onboardingStatus": "str",
    "lastIpAddress": "str",
    "healthStatus": "str",
    "osPlatform": "str",
    "riskScore": "str",
    "rbacGroupId": "num",
}
ACTION_FIELDS = {
    "id": "str",
    "status": "str",
    "machineId": "str",
    "type": "str",
    "requestor": "str",
    "creationDateTimeUtc": "date",
}
#: path action -> (MachineAction type, required role)
ACTION_ROUTES = {
    "isolate": ("Isolate", "Machine.Isolate"),
    "unisolate": ("Unisolate", "Machine.Isolate"),
    "runAntiVirusScan": ("RunAntiVirusScan", "Machine.Scan"),
    "restrictCodeExecution": ("RestrictCodeExecution", "Machine.RestrictExecution"),
    "unrestrictCodeExecution": ("UnrestrictCodeExecution", "Machine.RestrictExecution"),
    "collectInvestigationPackage": ("CollectInvestigationPackage", "Machine.CollectForensics"),
    "offboard": ("Offboard", "Machine.Offboard"),
    "StopAndQuarantineFile": ("StopAndQuarantineFile", "Machine.StopAndQuarantine"),
}
READ_ROLES = ("Machine.Read.All", "Machine.ReadWrite.All")
#: post-ti-indicator.md, get-ti-indicators-collection.md, delete-ti-indicator-by-id.md
TI_ROLES = ("Ti.ReadWrite", "Ti.ReadWrite.All")
SHA1 = re.compile(r"^[0-9a-fA-F]{40}$")
CANCEL_ROLES = (
    "Machine.CollectForensics",
    "Machine.Isolate",
    "Machine.RestrictExecution",
    "Machine.Scan",
    "Machine.Offboard",
    "Machine.StopAndQuarantine",
    "Machine.LiveResponse",
)
#: Microsoft Graph advanced hunting (GR:api/security-security-runhuntingquery.md)
GRAPH_HUNTING = "/v1.0/security/runHuntingQuery"
#: the body MDE's retired hunting endpoint answers with. run-advanced-query-api.md says only that after retirement
#: the API "no longer functions" (MC1220762), with no status: 410 Gone is HTTP's status for a resource that is
#: permanently gone (RFC 9110 §15.5.11), in MDE's documented error shape (common-errors.md)
RETIRED_MESSAGE = (
    "The Microsoft Defender for Endpoint advanced hunting API is retired; use the Microsoft Graph security API "
    "runHuntingQuery (MC1220762)"
)
#: the parsed JSON body of the request being handled (each request runs in its own task context)
_BODY: ContextVar[Any] = ContextVar("sim_body", default=None)
FINDBYIP = re.compile(r"^findbyip\(ip='([^']*)',timestamp=([^)]*)\)$")


@dataclass
class LoggedRequest:
    index: int
    time: float
    method: str
    path: str
    query: dict[str, str]
    family: str | None
    status: int
    body: Any
    response: Any
    #: when the request arrived (``time`` is when it was answered)
    received: float = 0.0


class Simulator:
    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.tenant: Tenant = seed_tenant(self.config.devices, self.config.seed, self.config.inactive_rate)
        self.rng = random.Random(self.config.seed + 1)
        self.request_log: list[LoggedRequest] = []
        self.sent_429 = 0
        self._quotas = self._make_quotas()
        #: the newest action per (machine, type): the duplicate check without scanning every action
        self._latest: dict[tuple[str, str], SimAction] = {}
        self.indicators = IndicatorStore()
        self.blobs = liveresponse.BlobStore(self.config.time_scale)
        self.app = self._make_app()
        self._runner: web.AppRunner | None = None
        self.url = ""

    def _make_quotas(self) -> dict[str, Quota]:
        c, scale = self.config, self.config.time_scale
        quotas = {f: Quota([(c.minute_limit, 60 / scale), (c.hour_limit, 3600 / scale)]) for f in FAMILIES}
        quotas["advanced_queries"] = Quota([(c.hunting_minute_limit, 60 / scale), (c.hunting_hour_limit, 3600 / scale)])
        # run-live-response.md: "10 calls per minute (more requests are responded with HTTP 429)"
        quotas["live_response"] = Quota([(c.live_response_minute_limit, 60 / scale)])
        # Graph documents "up to at least 45 calls per minute per tenant" and no hourly figure
        # (GR:resources/security-api-overview.md, Quotas and resource allocation)
        quotas["graph_hunting"] = Quota([(c.hunting_minute_limit, 60 / scale)])
        return quotas

    # -- lifecycle ------------------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        bound = sockets[0].getsockname()[1] if sockets else port
        self.url = f"http://{host}:{bound}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def connect(self, **kw: Any) -> MdeClient:
        """The real client pointed at this simulator, hunting through its Microsoft Graph endpoint."""
        from mde.auth import StaticTokenProvider
        from mde.client import MdeClient
        from mde.graph import GraphClient

        graph_kw = {k: v for k, v in kw.items() if k in ("limiter", "retry", "on_response")}
        graph_token = self.config.graph_token or self.config.token or "sim-token"
        graph = GraphClient(self.url, StaticTokenProvider(graph_token), **graph_kw)
        return MdeClient(self.url, StaticTokenProvider(self.config.token or "sim-token"), graph=graph, **kw)

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def actions_for(self, machine_id: str) -> list[dict[str, Any]]:
        return [a.to_api(list_shape=False) for a in self.tenant.actions.values() if a.machine_id == machine_id]

    def stats(self) -> dict[str, Any]:
        per_family: dict[str, int] = {}
        statuses: dict[str, int] = {}
        for entry in self.request_log:
            if entry.family:
                per_family[entry.family] = per_family.get(entry.family, 0) + 1
        groups: dict[tuple[str, str], int] = {}
        for action in self.tenant.actions.values():
            key = f"{action.type}:{action.status()}"
            statuses[key] = statuses.get(key, 0) + 1
            if action.cancelled_at is None:
                groups[(action.machine_id, action.type)] = groups.get((action.machine_id, action.type), 0) + 1
        finished = [f for a in self.tenant.actions.values() if (f := a.finished_mono()) is not None]
        submitted = [e.time for e in self.request_log if e.family == "machine_actions" and e.status == 201]
        return {
            # time.monotonic() values: CLOCK_MONOTONIC is system-wide, so another local process can compare
            "first_action_mono": min(submitted, default=None),
            "last_final_mono": max(finished, default=None),
            "requests": len(self.request_log),
            "per_family": per_family,
            "http_429": self.sent_429,
            "http_401": sum(1 for e in self.request_log if e.status == 401),
            "http_5xx": sum(1 for e in self.request_log if e.status >= 500),
            "actions": len(self.tenant.actions),
            "actions_by_type_status": statuses,
            "duplicate_actions": sum(n - 1 for n in groups.values() if n > 1),
        }

    # -- plumbing -------------------------------------------------------------------------------------
    def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        for prefix in ("/api", "/api/v1.0"):
            app.router.add_get(prefix + "/machines", self.list_machines)
            app.router.add_post(prefix + "/machines/AddOrRemoveTagForMultipleMachines", self.bulk_tags)
            app.router.add_get(prefix + "/machines/{rest}", self.get_machine_route)
            app.router.add_get(prefix + "/machines/{id}/logonusers", self.logon_users)
            app.router.add_get(prefix + "/machines/{id}/alerts", self.machine_alerts)
            app.router.add_get(prefix + "/alerts", self.list_alerts)
            app.router.add_post(prefix + "/machines/{id}/tags", self.machine_tags)
            app.router.add_post(prefix + "/machines/{id}/runliveresponse", self.run_live_response)
            app.router.add_post(prefix + "/machines/{id}/{action}", self.machine_action)
            app.router.add_get(prefix + "/machineactions", self.list_actions)
            app.router.add_get(prefix + "/machineactions/{id}", self.get_action)
            app.router.add_get(prefix + "/machineactions/{id}/{fn}", self.live_response_link)
            app.router.add_post(prefix + "/machineactions/{id}/cancel", self.cancel_action)
            app.router.add_get(prefix + "/users/{id}/machines", self.user_machines)
            app.router.add_get(prefix + "/files/{id}/stats", self.file_stats)
            app.router.add_get(prefix + "/files/{id}/machines", self.file_machines)
            app.router.add_get(prefix + "/indicators", self.list_indicators)
            app.router.add_post(prefix + "/indicators", self.submit_indicator)
            app.router.add_delete(prefix + "/indicators/{id}", self.delete_indicator)
            app.router.add_post(prefix + "/advancedqueries/run", self.run_query)
        app.router.add_get("/_sim/blobs/{token}", self.sim_blob)
        app.router.add_post(GRAPH_HUNTING, self.run_hunting_query)
        app.router.add_get("/_sim/requests", self.sim_requests)
        app.router.add_get("/_sim/stats", self.sim_stats)
        app.router.add_get("/_sim/tenant", self.sim_tenant)
        app.router.add_post("/_sim/faults", self.sim_faults)
        app.router.add_post("/_sim/machines", self.sim_add_machines)
        app.router.add_post("/_sim/portal", self.sim_portal_action)
        app.router.add_post("/_sim/machines/{id}/reconnect", self.sim_reconnect)
        return app

    @staticmethod
    def _family(method: str, path: str) -> tuple[str | None, tuple[str, ...]]:
        """The rate-limit family and the roles (any one suffices) a call needs."""
        if path == GRAPH_HUNTING:
            return "graph_hunting", ("ThreatHunting.Read.All",)
        p = path.replace("/api/v1.0/", "/api/")
        if not p.startswith("/api/"):
            return None, ()
        if p.startswith("/api/alerts") or (p.startswith("/api/machines/") and p.endswith("/alerts")):
            return "alerts_read", ALERT_ROLES  # get-alerts.md, get-machine-related-alerts.md
        if p.startswith("/api/advancedqueries"):
            return "advanced_queries", ("AdvancedQuery.Read.All",)
        if p.startswith("/api/indicators"):
            return "indicators", TI_ROLES
        if p.startswith("/api/files/") and p.endswith("/machines"):
            return "files_read", READ_ROLES  # get-file-related-machines.md
        if p.startswith("/api/files/"):
            return "files_read", ("File.Read.All",)  # get-file-statistics.md
        if p.startswith("/api/users/"):
            return "machines_read", ("Machine.ReadWrite.All",)  # get-user-related-machines.md
        if p.endswith("/logonusers"):
            return "machines_read", ("User.Read.All",)  # get-machine-log-on-users.md
        if p.endswith("/runliveresponse"):
            return "live_response", ("Machine.LiveResponse",)  # run-live-response.md
        if p.startswith("/api/machineactions"):
            if p.endswith("/cancel"):
                return "machineactions_read", CANCEL_ROLES
            return "machineactions_read", READ_ROLES
        if method == "GET":
            return "machines_read", READ_ROLES
        if p.endswith("/tags") or p.endswith("AddOrRemoveTagForMultipleMachines"):
            return "machine_tags", ("Machine.ReadWrite.All",)
        action = p.rsplit("/", 1)[-1]
        return "machine_actions", (ACTION_ROUTES.get(action, ("", "Machine.Isolate"))[1],)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        received = time.monotonic()
        family, roles = self._family(request.method, request.path)
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = {"__invalid__": raw[:200].decode("utf-8", "replace")}
        status, payload = 500, None
        try:
            if family is not None:
                if self.config.latency_s:
                    await asyncio.sleep(self.config.latency_s)
                self._check_burst_5xx()
                if family == "graph_hunting":
                    self._check_graph_auth(request, roles)
                else:
                    self._check_auth(request, roles)
                self._check_quota(family, request.path)
                if self.config.error_rate and self.rng.random() < self.config.error_rate:
                    raise ApiError(500, "InternalServerError", "Simulated server error")
                if isinstance(body, dict) and "__invalid__" in body:
                    raise ApiError(400, "InvalidRequestBody", "Request body is not valid JSON")
            _BODY.set(body)
            response: web.StreamResponse = await handler(request)
            status = response.status
            if family == "machine_actions" and status == 201 and self.config.slow_answers > 0:
                # executed, but the answer is late: a client that gave up must not assume it failed
                self.config.slow_answers -= 1
                await asyncio.sleep(self.config.slow_answer_s)
            payload = getattr(response, "text", None)
            return response
        except ApiError as exc:
            status = exc.status
            if status == 429:
                self.sent_429 += 1
            error = _error_body(exc, graph=family == "graph_hunting")
            payload = error
            return web.json_response(error, status=exc.status, headers=exc.headers)
        finally:
            if family is not None:
                self.request_log.append(
                    LoggedRequest(
                        index=len(self.request_log),
                        time=time.monotonic(),
                        method=request.method,
                        path=request.path,
                        query=dict(request.query),
                        family=family,
                        status=status,
                        body=body,
                        response=payload if status >= 400 else None,
                        received=received,
                    )
                )

    def _check_auth(self, request: web.Request, roles: tuple[str, ...]) -> None:
        if self.config.token is not None:
            header = request.headers.get("Authorization", "")
            if header != f"Bearer {self.config.token}":
                raise ApiError(401, "Unauthorized", "The access token is missing, invalid or expired")
        if self.config.roles is not None and roles and not (set(roles) & self.config.roles):
            raise ApiError(
                403,
                "Forbidden",
                f"The application does not have any of the required application "
                f"permissions ({', '.join(roles)}) to access the resource.",
            )

    def _check_graph_auth(self, request: web.Request, roles: tuple[str, ...]) -> None:
        """Graph's own token and roles: an MDE token is not a Graph token (Graph deployments.md)."""
        token = self.config.graph_token or self.config.token
        if token is not None and request.headers.get("Authorization", "") != f"Bearer {token}":
            raise ApiError(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
        granted = self.config.graph_roles
        if granted is not None and not (set(roles) & granted):
            # runHuntingQuery needs ThreatHunting.Read.All
            # (GR:includes/permissions/security-security-runhuntingquery-permissions.md)
            message = "Missing role permissions on the request. API requires one of 'ThreatHunting.Read.All'."
            raise ApiError(403, "Forbidden", message)

    def _check_burst_5xx(self) -> None:
        if self.config.burst_5xx > 0:
            self.config.burst_5xx -= 1
            raise ApiError(503, "ServiceUnavailable", "Simulated outage")

    def _check_quota(self, family: str, path: str) -> None:
        match = self.config.burst_429_match
        if self.config.burst_429 > 0 and (match is None or match in path):
            self.config.burst_429 -= 1
            wait = self.config.burst_429_retry_after_s
            scale = self.config.time_scale
            raise ApiError(
                429,
                "TooManyRequests",
                "Simulated throttling burst",
                {"Retry-After": _retry_after((1.0 if wait is None else wait) / scale, scale)},
            )
        wait = self._quotas[family].try_take()
        if wait > 0:
            raise ApiError(
                429,
                "TooManyRequests",
                f"API calls quota exceeded for {family}; retry later",
                {"Retry-After": _retry_after(wait, self.config.time_scale)},
            )

    def _machine(self, key: str) -> dict[str, Any]:
        machine = self.tenant.machines.get(key.lower())
        if machine is None:
            matches = self.tenant.by_name(key)
            if len(matches) == 1:
                machine = matches[0]
        if machine is None:
            raise ApiError(404, "ResourceNotFound", f"Machine {key} was not found")
        return machine

    def _page(self, request: web.Request, rows: list[dict[str, Any]], context: str) -> web.Response:
        try:
            top = int(request.query.get("$top", self.config.page_size))
            skip = int(request.query.get("$skip", 0))
        except ValueError:
            raise ApiError(400, "ODataError", "$top and $skip must be integers") from None
        if top < 0 or top > 10000 or skip < 0:
            raise ApiError(400, "ODataError", "$top must be between 0 and 10000")
        page = rows[skip : skip + top]
        data: dict[str, Any] = {
            "@odata.context": f"https://api.security.microsoft.com/api/$metadata#{context}",
            "value": page,
        }
        if skip + top < len(rows):
            query = dict(request.query)
            query["$skip"] = str(skip + top)
            query["$top"] = str(top)
            # next_link_base: MDE answering a regional host with a link to another of its documented hosts (the
            # list pages' examples name api.security.microsoft.com whichever host was asked: get-machines.md)
            data["@odata.nextLink"] = f"{self.config.next_link_base or self.url}{request.path}?{urlencode(query)}"
        return web.json_response(data)

    # -- machines -------------------------------------------------------------------------------------
    def _filtered_machines(self, request: web.Request) -> list[dict[str, Any]]:
        return _filtered(
            request,
            list(self.tenant.machines.values()),
            MACHINE_FIELDS,
            {"machineTags"},
            case_sensitive=self.config.case_sensitive_filters,
        )

    async def list_machines(self, request: web.Request) -> web.Response:
        rows = self._filtered_machines(request)
        if not rows:
            raise ApiError(404, "NotFound", "No machines found")
        return self._page(request, rows, "Machines")

    # -- alerts ---------------------------------------------------------------------------------------
    async def list_alerts(self, request: web.Request) -> web.Response:
        """learn.microsoft.com/defender-endpoint/api/get-alerts: ``$filter`` on the documented properties,
        ``$top`` up to 10,000 and ``$skip``; 200 with an empty ``value`` when nothing matches (the page
        documents no 404 for an empty list, unlike get-machines.md)."""
        rows = _filtered(request, self.tenant.alerts, ALERT_FIELDS, case_sensitive=self.config.case_sensitive_filters)
        return self._page(request, rows, "Alerts")

    async def machine_alerts(self, request: web.Request) -> web.Response:
        """learn.microsoft.com/defender-endpoint/api/get-machine-related-alerts: every alert of one device;
        404 when the device is not found."""
        machine = self._machine(request.match_info["id"])
        rows = [a for a in self.tenant.alerts if a["machineId"] == machine["id"]]
        return web.json_response({"@odata.context": "…#Alerts", "value": rows})

    async def get_machine_route(self, request: web.Request) -> web.Response:
        rest = request.match_info["rest"]
        if rest == "findbytag":
            tag = request.query.get("tag")
            if not tag:
                raise ApiError(400, "MissingRequiredParameter", "tag is required")
            starts = request.query.get("useStartsWithFilter", "false").lower() == "true"
            rows = [
                m
                for m in self.tenant.machines.values()
                if any(
                    (t.lower().startswith(tag.lower()) if starts else t.lower() == tag.lower())
                    for t in m["machineTags"]
                )
            ]
            return web.json_response({"@odata.context": "…#Machines", "value": rows})
        match = FINDBYIP.match(rest)
        if match:
            ip, stamp = match.group(1), match.group(2)
            try:
                when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            except ValueError:
                raise ApiError(400, "InvalidInput", f"Invalid timestamp {stamp}") from None
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            if when < datetime.now(UTC) - timedelta(days=30):
                raise ApiError(400, "InvalidInput", "The timestamp must be within the last 30 days")
            rows = [m for m in self.tenant.machines.values() if m["lastIpAddress"] == ip]
            return web.json_response({"@odata.context": "…#Machines", "value": rows})
        return web.json_response(self._machine(rest))

    async def machine_tags(self, request: web.Request) -> web.Response:
        machine = self._machine(request.match_info["id"])
        body = _BODY.get() or {}
        value, action = _required(body, "Value"), _required(body, "Action")
        self._apply_tag(machine, value, action)
        return web.json_response(machine)

    def _apply_tag(self, machine: dict[str, Any], value: Any, action: Any) -> None:
        if not isinstance(value, str) or not value.strip():
            raise ApiError(400, "InvalidInput", "Value must be a non-empty string")
        if action not in ("Add", "Remove"):
            raise ApiError(400, "InvalidInput", "Action must be Add or Remove")
        tags = machine["machineTags"]
        if action == "Add" and value not in tags:
            tags.append(value)
        if action == "Remove" and value in tags:
            tags.remove(value)

    async def bulk_tags(self, request: web.Request) -> web.Response:
        body = _BODY.get() or {}
        value, action, ids = (
            _required(body, "Value"),
            _required(body, "Action"),
            _required(body, "MachineIds"),
        )
        if not isinstance(ids, list):
            raise ApiError(400, "InvalidInput", "MachineIds must be a list")
        if len(ids) > 500:
            raise ApiError(
                400,
                "MaximumBatchSizeExceeded",
                f"Maximum batch size exceeded. Received: {len(ids)}, allowed: 500",
            )
        machines = [self._machine(str(i)) for i in ids]
        for machine in machines:
            self._apply_tag(machine, value, action)
        return web.json_response({"@odata.context": "…#Machines", "value": machines})

    async def machine_action(self, request: web.Request) -> web.Response:
        path_action = request.match_info["action"]
        if path_action not in ACTION_ROUTES:
            raise ApiError(404, "NotFound", f"Unknown action {path_action}")
        action_type, _role = ACTION_ROUTES[path_action]
        machine = self._machine(request.match_info["id"])
        body = _BODY.get()
        if body is None:
            raise ApiError(400, "InvalidRequestBody", "Request body is required")
        comment = _required(body, "Comment")
        scope = None
        if action_type == "Isolate":
            scope = body.get("IsolationType", "Full")
            if scope not in ("Full", "Selective", "UnManagedDevice"):
                raise ApiError(400, "InvalidInput", "IsolationType must be Full, Selective or UnManagedDevice")
        elif action_type == "RunAntiVirusScan":
            scope = _required(body, "ScanType")
            if scope not in ("Quick", "Full"):
                raise ApiError(400, "InvalidInput", "ScanType must be Quick or Full")
        elif action_type == "StopAndQuarantineFile":
            # stop-and-quarantine-file.md: body Sha1 (SHA-1 only); its platforms are rows of mde.capabilities
            sha1 = str(_required(body, "Sha1"))
            if not SHA1.match(sha1):
                raise ApiError(400, "InvalidHashValue", f"Sha1 '{sha1[:80]}' is not a SHA-1 (40 hex digits)")
        refused = refusal(machine, action_type, scope)
        if refused is not None:
            raise ApiError(400, *refused)
        latest = self._latest.get((machine["id"], action_type))
        if latest is not None and latest.status() not in FINAL:
            raise ApiError(400, "ActiveRequestAlreadyExists", "Action is already in progress")
        action = new_action(self.config, self.rng, machine, action_type, str(comment), scope)
        action.external_id = body.get("ExternalID")
        if action_type == "StopAndQuarantineFile":
            # machineaction.md: relatedFileInfo {fileIdentifier, fileIdentifierType}
            action.extra["relatedFileInfo"] = {"fileIdentifier": body["Sha1"], "fileIdentifierType": "Sha1"}
        self.tenant.actions[action.id] = action
        self._latest[(machine["id"], action_type)] = action
        return web.json_response(action.to_api(list_shape=False), status=201)

    async def run_live_response(self, request: web.Request) -> web.Response:
        """run-live-response.md (see mde.simulator.liveresponse for the rules it documents)."""
        machine = self._machine(request.match_info["id"])
        body = _BODY.get()
        commands = liveresponse.validate_commands(body)
        if machine.get("onboardingStatus") not in ("onboarded", "Onboarded") or str(machine["osPlatform"]).lower() in (
            "ios",
            "android",
        ):
            raise ApiError(400, "OsPlatformNotSupported", f"Live response is not supported on {machine['osPlatform']}")
        latest = self._latest.get((machine["id"], "LiveResponse"))
        if latest is not None and latest.status() not in FINAL:
            raise ApiError(
                400, "ActiveRequestAlreadyExists", "A live response session is already running on the device"
            )
        running = sum(1 for a in self.tenant.actions.values() if a.type == "LiveResponse" and a.status() not in FINAL)
        if running >= liveresponse.MAX_SESSIONS:
            raise ApiError(
                429, "TooManyRequests", "25 live response sessions are already running", {"Retry-After": "60"}
            )
        action = new_action(self.config, self.rng, machine, "LiveResponse", str(body["Comment"]), None)
        present = self.tenant.device_files.get(machine["id"], set())
        if action.plan == "Succeeded" and any(p not in present for p in liveresponse.get_file_paths(commands)):
            action.plan = "Failed"  # GetFile of a path that is not on the device
        action.extra["commands"] = commands
        self.tenant.actions[action.id] = action
        self._latest[(machine["id"], "LiveResponse")] = action
        return web.json_response(action.to_api(list_shape=False), status=201)

    async def live_response_link(self, request: web.Request) -> web.Response:
        """get-live-response-result.md: a download link for one command's result, valid 30 minutes."""
        match = liveresponse.LINK_FN.match(request.match_info["fn"])
        if match is None:
            raise ApiError(404, "NotFound", f"Unknown function {request.match_info['fn']}")
        action = self._action(request.match_info["id"])
        index = int(match.group(1))
        commands = action.commands()
        if action.type != "LiveResponse" or index >= len(commands):
            raise ApiError(400, "InvalidInput", f"Action {action.id} has no live response command {index}")
        if commands[index]["commandStatus"] != "Completed":
            raise ApiError(
                400, "InvalidInput", f"Command {index} has not completed ({commands[index]['commandStatus']})"
            )
        paths = liveresponse.get_file_paths([commands[index]["command"]])
        link = self.blobs.link(self.url, action.id, index, paths[0] if paths else "")
        return web.json_response({"@odata.context": "…#Edm.String", "value": link})

    async def user_machines(self, request: web.Request) -> web.Response:
        """get-user-related-machines.md: the id is the account name, not the UPN; unknown user: 200, empty."""
        account = request.match_info["id"]
        if "@" in account:
            raise ApiError(400, "InvalidInput", "The ID is not the full UPN, but only the user name")
        ids = [
            mid
            for mid, users in self.tenant.logons.items()
            if any(u["accountName"].lower() == account.lower() for u in users)
        ]
        rows = [self.tenant.machines[mid] for mid in ids if mid in self.tenant.machines]
        return web.json_response({"@odata.context": "…#Machines", "value": rows})

    async def logon_users(self, request: web.Request) -> web.Response:
        """get-machine-log-on-users.md: 200 with the device's logon users, 404 for an unknown device."""
        machine = self._machine(request.match_info["id"])
        return web.json_response({"@odata.context": "…#Users", "value": self.tenant.logons.get(machine["id"], [])})

    async def file_stats(self, request: web.Request) -> web.Response:
        """get-file-statistics.md: prevalence for a file hash; 404 when the file does not exist."""
        row = self.tenant.files.get(request.match_info["id"].lower())
        look_back = request.query.get("lookBackHours", "720")
        if not look_back.isdigit() or not 1 <= int(look_back) <= 720:
            raise ApiError(400, "InvalidInput", "The maximum value for lookbackhours is 720 hours (30 days)")
        if row is None:
            raise ApiError(404, "NotFound", f"File {request.match_info['id']} was not found")
        now = datetime.now(UTC)
        return web.json_response(
            {
                "sha1": row["sha1"],
                "organizationPrevalence": row["organizationPrevalence"],
                "orgFirstSeen": iso(now - timedelta(days=20)),
                "orgLastSeen": iso(now),
                "globallyPrevalence": row["organizationPrevalence"] * 100,
                "topFileNames": row["names"],
            }
        )

    async def file_machines(self, request: web.Request) -> web.Response:
        """get-file-related-machines.md: SHA-1 only (not MD5 or SHA-256); an unknown file: 200, empty set."""
        sha1 = request.match_info["id"].lower()
        if not SHA1.match(sha1):
            raise ApiError(400, "InvalidHashValue", "Only SHA-1 is supported (not MD5 or SHA-256)")
        row = self.tenant.files.get(sha1)
        ids = row["machineIds"] if row is not None and row["sha1"] == sha1 else []
        rows = [self.tenant.machines[mid] for mid in ids if mid in self.tenant.machines]
        return web.json_response({"@odata.context": "…#Machines", "value": rows})

    async def submit_indicator(self, _request: web.Request) -> web.Response:
        """post-ti-indicator.md (rules in mde.simulator.indicators): 200 with the created or updated entity."""
        return web.json_response(self.indicators.submit(_BODY.get()))

    async def list_indicators(self, request: web.Request) -> web.Response:
        """get-ti-indicators-collection.md: active indicators, $filter on the documented properties."""
        return self._page(request, _filtered(request, self.indicators.active(), INDICATOR_FIELDS), "Indicators")

    async def delete_indicator(self, request: web.Request) -> web.Response:
        """delete-ti-indicator-by-id.md: 204 without content, or 404."""
        self.indicators.delete(request.match_info["id"])
        return web.Response(status=204)

    # -- machine actions ------------------------------------------------------------------------------
    async def list_actions(self, request: web.Request) -> web.Response:
        rows = [a.to_api(list_shape=True) for a in self.tenant.actions.values()]
        rows.sort(key=lambda r: r["creationDateTimeUtc"], reverse=True)
        return self._page(request, _filtered(request, rows, ACTION_FIELDS), "MachineActions")

    def _action(self, action_id: str) -> SimAction:
        action = self.tenant.actions.get(action_id)
        if action is None:
            raise ApiError(404, "ResourceNotFound", f"Machine action {action_id} was not found")
        return action

    async def get_action(self, request: web.Request) -> web.Response:
        return web.json_response(self._action(request.match_info["id"]).to_api(list_shape=False))

    async def cancel_action(self, request: web.Request) -> web.Response:
        action = self._action(request.match_info["id"])
        comment = _required(_BODY.get() or {}, "Comment")
        if action.status() in FINAL:
            raise ApiError(400, "InvalidRequest", f"Action {action.id} is already {action.status()}")
        action.cancelled_at, action.cancel_comment = time.monotonic(), str(comment)
        return web.json_response(action.to_api(list_shape=False))

    async def run_query(self, request: web.Request) -> web.Response:
        if not self.config.legacy_hunting:
            raise ApiError(410, "Gone", RETIRED_MESSAGE)  # see RETIRED_MESSAGE for the choice of status
        query = _required(_BODY.get() or {}, "Query")
        try:
            schema, rows = run_query(self.tenant, str(query))
        except KqlError as exc:
            raise ApiError(400, "BadRequest", f"Query could not be parsed: {exc}") from None
        return web.json_response({"Schema": schema, "Results": rows})

    async def run_hunting_query(self, request: web.Request) -> web.Response:
        """Graph ``runHuntingQuery``: ``Query`` required, ``Timespan`` optional ISO 8601 (default 30 days); the
        answer is a ``huntingQueryResults`` with lower-case ``schema``/``results`` and ``name``/``type`` columns
        (GR:api/security-security-runhuntingquery.md, GR:resources/security-huntingqueryresults.md)."""
        body = _BODY.get()
        params = {str(k).lower(): v for k, v in body.items()} if isinstance(body, dict) else {}
        query = params.get("query")  # the page writes Query; Graph's SDKs send query: both are accepted
        if not isinstance(query, str) or not query.strip():
            raise ApiError(400, "BadRequest", "The Query parameter is required.")
        timespan = params.get("timespan")
        if timespan is not None and not (isinstance(timespan, str) and ("P" in timespan or "T" in timespan)):
            raise ApiError(400, "BadRequest", "Timespan must be an ISO 8601 duration, date or interval.")
        try:
            schema, rows = run_query(self.tenant, query)
        except KqlError as exc:
            raise ApiError(400, "BadRequest", f"Query could not be parsed: {exc}") from None
        return web.json_response(
            {
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#microsoft.graph.security.huntingQueryResults",
                "schema": [{"name": c["Name"], "type": c["Type"]} for c in schema],
                "results": rows,
            }
        )

    # -- admin ----------------------------------------------------------------------------------------
    async def sim_blob(self, request: web.Request) -> web.Response:
        """The storage behind a download link: 403 once the link expired (it lives 30 minutes)."""
        blob = self.blobs.open(request.match_info["token"])
        if blob is None:
            return web.json_response({"error": "AuthenticationFailed: the link expired"}, status=403)
        content = f"collected {blob.path} (action {blob.action_id}, command {blob.index})\n".encode()
        return web.Response(body=content, content_type="application/octet-stream")

    async def sim_requests(self, request: web.Request) -> web.Response:
        since = int(request.query.get("since", 0))
        return web.json_response([e.__dict__ for e in self.request_log[since:]], dumps=_dumps)

    async def sim_stats(self, _request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def sim_tenant(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {"devices": len(self.tenant.machines), "tags": self.tenant.tags(), "groups": self.tenant.groups()}
        )

    async def sim_faults(self, request: web.Request) -> web.Response:
        body = await request.json()
        allowed = {f.name for f in fields(SimulatorConfig)} & {
            "error_rate",
            "latency_s",
            "burst_429",
            "burst_429_retry_after_s",
            "burst_429_match",
            "burst_5xx",
            "slow_answers",
            "slow_answer_s",
            "stuck_machines",
            "token",
            "slow_action_rate",
            "never_finish_rate",
            "fail_action_rate",
            "legacy_hunting",
            "next_link_base",
            "case_sensitive_filters",
        }
        for key, value in body.items():
            if key not in allowed:
                return web.json_response({"error": f"unknown fault {key}"}, status=400)
            setattr(self.config, key, frozenset(value) if key == "stuck_machines" else value)
        shown = {k: getattr(self.config, k) for k in sorted(allowed - {"token"})}
        shown["stuck_machines"] = sorted(self.config.stuck_machines)
        return web.json_response(shown)

    async def sim_portal_action(self, request: web.Request) -> web.Response:
        """``{"action": "isolate"|"release", "machineId": ID, "requestor": UPN, "comment": …}``: what someone
        does in the portal, outside the bot; answers the machine action MDE records for it."""
        body = await request.json()
        if not isinstance(body, dict) or body.get("action") not in PORTAL_ACTIONS:
            return web.json_response({"error": "action must be isolate or release"}, status=400)
        try:
            machine = self._machine(str(body.get("machineId") or ""))
        except ApiError as exc:
            return web.json_response({"error": exc.message}, status=404)
        action = portal_action(machine, body)
        self.tenant.actions[action.id] = action
        self._latest[(machine["id"], action.type)] = action
        return web.json_response(action.to_api(list_shape=False), status=201)

    async def sim_reconnect(self, request: web.Request) -> web.Response:
        """An offline device comes back: its held actions run now (respond-machine-alerts.md, three days)."""
        machine = self._machine(request.match_info["id"])
        self.reconnect(machine["id"])
        return web.json_response(machine)

    def reconnect(self, machine_id: str) -> None:
        machine = self.tenant.machines[machine_id]
        machine["healthStatus"] = "Active"
        machine["lastSeen"] = iso(datetime.now(UTC))
        now = time.monotonic()
        for action in self.tenant.actions.values():
            if action.machine_id == machine_id and action.status(now) not in FINAL:
                action.reconnected_at = now

    async def sim_add_machines(self, request: web.Request) -> web.Response:
        body = await request.json()
        added = []
        for item in body if isinstance(body, list) else [body]:
            machine = make_machine(
                item.get("id") or uuid.uuid4().hex + uuid.uuid4().hex[:8],
                item["computerDnsName"],
                os_platform=item.get("osPlatform", "Windows11"),
                group=(int(item.get("rbacGroupId", 142)), item.get("rbacGroupName", "Workstations")),
                tags=item.get("machineTags", []),
                health=item.get("healthStatus", "Active"),
                onboarding=item.get("onboardingStatus", "onboarded"),
                version=item.get("version"),
                os_build=item.get("osBuild"),
            )
            if "clientVersion" in item:
                machine["clientVersion"] = item["clientVersion"]
            added.append(self.tenant.add(machine))
        return web.json_response(added, status=201)


def _filtered(
    request: web.Request,
    rows: list[dict[str, Any]],
    fields: dict[str, str],
    collections: set[str] | None = None,
    *,
    case_sensitive: bool = False,
) -> list[dict[str, Any]]:
    """The rows matching the request's ``$filter`` (400 ODataError for a bad one)."""
    text = request.query.get("$filter")
    if not text:
        return rows
    try:
        pred = compile_filter(text, fields, collections, case_sensitive=case_sensitive)
    except ODataError as exc:
        raise ApiError(400, "ODataError", f"Invalid filter clause: {exc}") from None
    return [r for r in rows if pred(r)]


def _error_body(exc: ApiError, *, graph: bool) -> dict[str, Any]:
    """MDE's error shape (common-errors.md) or Graph's, which carries ids in innerError (Graph concepts/errors.md)."""
    if not graph:
        return {"error": {"code": exc.code, "message": exc.message, "target": str(uuid.uuid4())}}
    request_id = str(uuid.uuid4())
    inner = {"date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "request-id": request_id}
    inner["client-request-id"] = request_id
    return {"error": {"code": exc.code, "message": exc.message, "innerError": inner}}


def _retry_after(seconds: float, scale: float) -> str:
    """Real MDE sends whole seconds; at a time scale above 1 the simulator sends decimals."""
    if scale <= 1:
        return str(max(1, int(seconds + 0.999)))
    return f"{max(seconds, 0.001):.3f}"


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)
