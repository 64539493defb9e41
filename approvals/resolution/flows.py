"""Resolve targets against MDE into the frozen device snapshot a request carries.

Safety rules (peers.md §3.2): exact names only, never "contains"; two devices with one name are shown,
never guessed; a target that matches nothing is an error with a suggestion, not a silent no-op.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from approvals.commands.models import Target, TargetKind
from approvals.errors import ResolutionError
from approvals.policy import Policy, Protection
from approvals.resolution.alerts import alerted_devices, worth_ranking
from approvals.resolution.catalog import CatalogCache, did_you_mean
from approvals.resolution.exclusions import (
    inactive_reason,
    isolation_reason,
    isolation_states,
    reconnect_note,
    unsupported,
)
from approvals.verbs import Verb
from approvals.views import ExclusionRow
from mde import odata
from mde.capabilities import Support, reconnect_line
from mde.client import MdeClient
from mde.errors import NotFound
from mde.models import Machine

MDE_ID = re.compile(r"^[0-9a-fA-F]{40}$")
ID_CHUNK = 25
MAX_QUERY_NAMES = 500
#: user: targets skip devices the user last logged on to longer ago than this (shown as excluded, with the date)
USER_LOGON_MAX_AGE = timedelta(days=30)
#: user: targets read each device's logon users (one call per device); more devices than this is refused
MAX_USER_DEVICES = 50

#: incident key -> the MDE device ids / DNS names its entities name (ChatOps reads them from the incident store)
IncidentLookup = Callable[[str], Awaitable[tuple[list[str], list[str]]]]


#: a target matched nothing because MDE lists no device at all (GET /api/machines answered 404, get-machines.md)
EMPTY_TENANT = (
    "MDE returned no devices at all for this app, so no target can match: check that MDE_TENANT_ID is the tenant "
    "your devices are onboarded to, that MDE_CLOUD (or MDE_BASE_URL) is its region, and that the app has "
    "Machine.Read.All with admin consent (`mde-chatops doctor`)."
)


@dataclass
class Resolution:
    devices: list[Machine] = field(default_factory=list)
    protection: dict[str, Protection] = field(default_factory=dict)
    exclusions: list[ExclusionRow] = field(default_factory=list)
    matched_by: dict[str, list[str]] = field(default_factory=dict)
    #: per device id: a line the card shows under the device (user: targets: the user's last logon; an inactive
    #: device the isolation waits for)
    notes: dict[str, str] = field(default_factory=dict)
    #: request-level lines for the card (inactive devices included, platform caveats)
    caveats: list[str] = field(default_factory=list)
    #: ``devices`` previews: what each action would skip on a device, and why (nothing is excluded)
    skips: dict[str, list[str]] = field(default_factory=dict)
    #: devices with an unresolved MDE alert: they go first, with the incident's hosts (riskiest first)
    alerted: frozenset[str] = frozenset()

    @property
    def protected(self) -> list[Machine]:
        return [m for m in self.devices if self.protection[m.id].level == "protected"]


class Resolver:
    def __init__(
        self,
        client: MdeClient,
        policy: Policy,
        *,
        catalog: CatalogCache | None = None,
        incidents: IncidentLookup | None = None,
    ) -> None:
        self._client = client
        self._policy = policy
        self._catalog = catalog or CatalogCache(client)
        self._incidents = incidents

    async def resolve(
        self, targets: Sequence[Target], *, verb: Verb, isolation_type: str = "Full", active_only: bool = False
    ) -> Resolution:
        result = Resolution()
        seen: dict[str, Machine] = {}
        for target in targets:
            matched = await self._match(target, result)
            label = str(target)
            for machine in matched:
                result.matched_by.setdefault(machine.id, []).append(label)
                seen.setdefault(machine.id, machine)
        if verb is Verb.DEVICES:
            self._mark_skips(list(seen.values()), result)
        else:
            await self._apply_exclusions(
                list(seen.values()), result, verb=verb, isolation_type=isolation_type, active_only=active_only
            )
            if worth_ranking(verb, len(result.devices)):
                found = await alerted_devices(self._client, [m.id for m in result.devices])
                result.alerted = found.machine_ids
                if found.caveat:
                    result.caveats.append(found.caveat)
        return result

    async def _match(self, target: Target, result: Resolution) -> list[Machine]:
        kind, value = target.kind, target.value
        if kind is TargetKind.DEVICE:
            return await self._by_device(value, result)
        if kind is TargetKind.TAG:
            found = [m async for m in self._client.iter_machines_by_tag(value, prefetch=True)]
            return found or await self._nothing(value, "tag", f"No device has the tag '{value}'.")
        if kind is TargetKind.GROUP:
            found = [m async for m in self._client.iter_machines_in_group(value, prefetch=True)]
            return found or await self._nothing(value, "group", f"No device group is named '{value}'.")
        if kind is TargetKind.IP:
            ipaddress.ip_address(value)
            found = await self._client.find_machines_by_ip(value, datetime.now(UTC))
            if not found:
                raise ResolutionError(f"No device was seen with IP {value} in the last 15 minutes.")
            return found
        if kind is TargetKind.QUERY:
            return await self._by_query(value, result)
        if kind is TargetKind.INCIDENT:
            return await self._by_incident(value, result)
        if kind is TargetKind.USER:
            return await self._by_user(value, result)
        if kind is TargetKind.FILE:
            found = await self._client.get_file_related_machines(value)
            if not found:
                raise ResolutionError(f"MDE saw the file {value} on no device (or not in the data it keeps).")
            return found
        raise ResolutionError(f"Unknown target kind {kind}.")

    async def _nothing(self, value: str, kind: str, sentence: str) -> list[Machine]:
        """A tag or group that matched nothing: say so, with the closest known spelling."""
        await self._require_devices()
        catalog = await self._catalog.get()
        hint = did_you_mean(value, catalog.tags if kind == "tag" else catalog.groups)
        raise ResolutionError(sentence + (f' Did you mean {kind}:"{hint}"?' if hint else ""))

    async def _require_devices(self) -> None:
        """An empty tenant is a set-up problem, not a typo: say so instead of "no device has the tag"."""
        if not await self._client.has_any_machine():
            raise ResolutionError(EMPTY_TENANT)

    async def _by_device(self, value: str, result: Resolution) -> list[Machine]:
        if MDE_ID.match(value):
            try:
                return [await self._client.get_machine(value.lower())]
            except NotFound:
                raise ResolutionError(f"No device has the MDE id {value}.") from None
        found = await self._client.find_machines_by_name(value)
        if not found:
            await self._require_devices()
            catalog = await self._catalog.get()
            hint = did_you_mean(value, catalog.names)
            raise ResolutionError(f"No device is named '{value}'." + (f" Did you mean device:{hint}?" if hint else ""))
        if len(found) > 1:
            for machine in found:
                result.exclusions.append(
                    ExclusionRow(
                        name=machine.computer_dns_name,
                        machine_id=machine.id,
                        kind="ambiguous",
                        reason=f"{len(found)} devices are named '{value}'; target one by device:{machine.id}",
                    )
                )
            return []
        return found

    async def _by_ids(self, ids: Sequence[str]) -> list[Machine]:
        out: list[Machine] = []
        unique = sorted({i.lower() for i in ids if MDE_ID.match(i)})
        for start in range(0, len(unique), ID_CHUNK):
            chunk = unique[start : start + ID_CHUNK]
            expr = " or ".join(f"id eq {odata.quote(i)}" for i in chunk)
            out.extend([m async for m in self._client.iter_machines(filter=expr)])
        return out

    async def _by_names(self, names: Sequence[str], result: Resolution) -> list[Machine]:
        if len(names) > MAX_QUERY_NAMES:
            raise ResolutionError(
                f"The query returned {len(names)} device names; project DeviceId instead of DeviceName "
                f"to resolve more than {MAX_QUERY_NAMES} devices."
            )
        out: list[Machine] = []
        for name in dict.fromkeys(names):
            if odata.has_control_characters(name):  # no device can have it; the other names still resolve
                reason = "not found (invalid characters)"
                result.exclusions.append(ExclusionRow(name=name, kind="not_found", reason=reason))
                continue
            found = await self._client.find_machines_by_name(name)
            if len(found) == 1:
                out.extend(found)
            elif found:
                out.extend(await self._by_device(name, result))
            else:
                result.exclusions.append(ExclusionRow(name=name, kind="not_found", reason="not found in MDE"))
        return out

    async def _by_query(self, kql: str, result: Resolution) -> list[Machine]:
        hunting = await self._client.hunt(kql)
        if id_column := hunting.column("DeviceId"):
            ids = [str(r.get(id_column) or "") for r in hunting.results]
            found = await self._by_ids(ids)
        elif name_column := hunting.column("DeviceName"):
            names = [str(r.get(name_column) or "") for r in hunting.results if r.get(name_column)]
            found = await self._by_names(names, result)
        else:
            raise ResolutionError("The query must return a DeviceId or DeviceName column (add | project DeviceId).")
        if not found:
            raise ResolutionError("The query returned no devices known to MDE.")
        return found

    async def _by_incident(self, incident_id: str, result: Resolution) -> list[Machine]:
        if self._incidents is None:
            raise ResolutionError(
                "incident: targets need incident notifications (POST /api/incidents); none are configured."
            )
        ids, names = await self._incidents(incident_id)
        found = await self._by_ids(ids)
        known = {m.computer_dns_name.lower() for m in found}
        found.extend(await self._by_names([n for n in names if n.lower() not in known], result))
        if not found:
            raise ResolutionError(f"Incident {incident_id} names no device known to MDE.")
        return found

    async def _by_user(self, user: str, result: Resolution) -> list[Machine]:
        """get-user-related-machines.md gives the devices; get-machine-log-on-users.md when the user was last
        seen on each. MDE's users API takes the account name only, so alice@contoso.com and alice@fabrikam.com
        are the same there: the card says which account name matched."""
        account = user.split("@", 1)[0]
        machines = await self._client.get_user_related_machines(account)
        if not machines:
            raise ResolutionError(f"MDE knows no device that the user '{account}' logged on to.")
        if len(machines) > MAX_USER_DEVICES:
            raise ResolutionError(
                f"The user '{account}' logged on to {len(machines)} devices; the limit for user: targets is "
                f"{MAX_USER_DEVICES}. Target the devices by name or tag instead."
            )
        now = datetime.now(UTC)
        out = []
        for machine in machines:
            logons = await self._client.get_machine_logon_users(machine.id)
            seen = [u for u in logons if u.account_name.lower() == account.lower()]
            last = max((u.last_seen for u in seen if u.last_seen is not None), default=None)
            if last is None or now - last > USER_LOGON_MAX_AGE:
                when = f"last logon {last:%Y-%m-%d %H:%M} UTC" if last else "no logon on record"
                result.exclusions.append(
                    ExclusionRow(
                        name=machine.computer_dns_name,
                        machine_id=machine.id,
                        kind="stale_logon",
                        reason=f"{account}: {when}, older than {USER_LOGON_MAX_AGE.days} days",
                    )
                )
                continue
            kinds = ", ".join(sorted({u.logon_types for u in seen if u.logon_types}))
            result.notes[machine.id] = f"{account} last logon {last:%Y-%m-%d %H:%M} UTC" + (
                f" ({kinds})" if kinds else ""
            )
            out.append(machine)
        if not out:
            raise ResolutionError(
                f"The user '{account}' logged on to no device in the last {USER_LOGON_MAX_AGE.days} days."
            )
        return out

    async def _apply_exclusions(
        self, machines: list[Machine], result: Resolution, *, verb: Verb, isolation_type: str, active_only: bool
    ) -> None:
        states = {}
        if verb in (Verb.ISOLATE, Verb.UNISOLATE) and machines:
            actions = await self._client.list_machine_actions(type="Isolate")
            actions += await self._client.list_machine_actions(type="Unisolate")
            states = isolation_states(actions)
        caveats: set[str] = set()
        classify = self._policy.classifier()
        for machine in sorted(machines, key=lambda m: m.computer_dns_name.lower()):
            verdict = unsupported(machine, verb, isolation_type)
            reason, kind = verdict.reason, "unsupported"
            if verdict.support is not Support.SUPPORTED:
                reason = reason or "not supported"
            if reason is None:
                reason, kind = inactive_reason(machine, verb, isolation_type, active_only=active_only), "inactive"
            if reason is None:
                reason, kind = isolation_reason(verb, states.get(machine.id)), "already"
            if reason is not None:
                result.exclusions.append(
                    ExclusionRow(name=machine.computer_dns_name, machine_id=machine.id, kind=kind, reason=reason)
                )
                continue
            if verdict.caveat:
                caveats.add(verdict.caveat)
            if machine.health_status == "Inactive" and verb is Verb.ISOLATE and isolation_type != "UnManagedDevice":
                result.notes[machine.id] = reconnect_note(machine)
            result.protection[machine.id] = classify(machine)
            result.devices.append(machine)
        if result.notes:
            result.caveats.append(reconnect_line(len(result.notes)))
        result.caveats.extend(sorted(caveats))

    def _mark_skips(self, machines: list[Machine], result: Resolution) -> None:
        """A preview excludes nothing: it lists every match and what each action would skip on it."""
        classify = self._policy.classifier()
        for machine in sorted(machines, key=lambda m: m.computer_dns_name.lower()):
            skips = []
            for verb, isolation_type, label in PREVIEW_ACTIONS:
                verdict = unsupported(machine, verb, isolation_type)
                reason = verdict.reason if verdict.support is not Support.SUPPORTED else None
                reason = reason or inactive_reason(machine, verb, isolation_type, active_only=False)
                if reason:
                    skips.append(f"{label}: {reason}")
            if skips:
                result.skips[machine.id] = skips
            result.protection[machine.id] = classify(machine)
            result.devices.append(machine)


#: what a ``devices`` preview checks each match against (verb, isolation type, label)
PREVIEW_ACTIONS = (
    (Verb.ISOLATE, "Full", "isolate"),
    (Verb.ISOLATE, "Selective", "isolate --type selective"),
    (Verb.SCAN, "Full", "scan"),
    (Verb.RESTRICT, "Full", "restrict"),
    (Verb.COLLECT, "Full", "collect"),
    (Verb.TAG, "Full", "tag"),
)
