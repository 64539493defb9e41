"""One run against MDE: run the query, compare with who carries the tag now, tag the difference in bulk.

The same ``plan`` gives the approval card its preview, so approvers see what the first run would do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from approvals.errors import ScheduleQueryError
from approvals.messages import describe_mde_error
from approvals.policy import Policy
from approvals.resolution.flows import ID_CHUNK, MDE_ID
from mde import odata
from mde.client import BULK_TAG_MAX, MdeClient
from mde.errors import MdeError
from mde.models import Machine, TagAction


@dataclass
class Plan:
    #: devices the query returned that MDE knows
    found: int = 0
    to_add: list[Machine] = field(default_factory=list)
    already_tagged: int = 0
    to_remove: list[Machine] = field(default_factory=list)
    #: protected devices left alone (no break-glass approval), with the reason
    skipped: list[tuple[Machine, str]] = field(default_factory=list)
    #: DeviceId values MDE does not know (offboarded, or not a device id)
    unknown: int = 0

    @property
    def changes(self) -> int:
        return len(self.to_add) + len(self.to_remove)


@dataclass
class Applied:
    added: int = 0
    removed: int = 0
    errors: list[str] = field(default_factory=list)


async def device_ids(client: MdeClient, kql: str) -> list[str]:
    """The query's DeviceId column, de-duplicated (names are ambiguous: an unattended run never guesses)."""
    hunting = await client.hunt(kql)
    column = hunting.column("DeviceId")
    if column is None:
        raise ScheduleQueryError(
            "A schedule's query must return a DeviceId column; end it with | distinct DeviceId (or | project DeviceId)."
        )
    return list(dict.fromkeys(str(r.get(column) or "").lower() for r in hunting.results if r.get(column)))


async def _by_ids(client: MdeClient, ids: Sequence[str]) -> list[Machine]:
    out: list[Machine] = []
    for start in range(0, len(ids), ID_CHUNK):
        expr = " or ".join(f"id eq {odata.quote(i)}" for i in ids[start : start + ID_CHUNK])
        out.extend([m async for m in client.iter_machines(filter=expr)])
    return out


def _has(machine: Machine, tag: str) -> bool:
    return tag.lower() in {t.lower() for t in machine.machine_tags}


async def plan(client: MdeClient, policy: Policy, *, tag: str, kql: str, sync: bool, include_protected: bool) -> Plan:
    ids = await device_ids(client, kql)
    holders = {m.id.lower(): m async for m in client.iter_machines_by_tag(tag) if _has(m, tag)}
    wanted = [i for i in ids if MDE_ID.match(i)]
    missing = [i for i in wanted if i not in holders]
    known = {m.id.lower(): m for m in await _by_ids(client, missing)}
    untagged = [m for m in known.values() if not _has(m, tag)]
    result = Plan(
        found=len(wanted) - len(missing) + len(known),
        already_tagged=len(wanted) - len(missing) + len(known) - len(untagged),
        unknown=len(ids) - len(wanted) + len(missing) - len(known),
    )
    candidates = [(m, result.to_add) for m in untagged]
    if sync:
        found = set(wanted)
        candidates += [(m, result.to_remove) for key, m in holders.items() if key not in found]
    for machine, bucket in sorted(candidates, key=lambda c: c[0].computer_dns_name.lower()):
        protection = policy.classify(machine)
        if protection.level == "protected" and not include_protected:
            result.skipped.append((machine, protection.reason or "protected"))
        else:
            bucket.append(machine)
    return result


async def apply(client: MdeClient, tag: str, todo: Plan) -> Applied:
    """Bulk calls of at most 500 devices; a failed chunk is reported and the others still go."""
    done = Applied()
    for action, machines in ((TagAction.ADD, todo.to_add), (TagAction.REMOVE, todo.to_remove)):
        ids = [m.id for m in machines]
        for start in range(0, len(ids), BULK_TAG_MAX):
            chunk = ids[start : start + BULK_TAG_MAX]
            try:
                await client.add_or_remove_tag_for_multiple_machines(tag, action, chunk)
            except MdeError as exc:
                verb = "tagged" if action is TagAction.ADD else "untagged"
                done.errors.append(f"{len(chunk)} device(s) not {verb}: {describe_mde_error(exc)}")
                continue
            if action is TagAction.ADD:
                done.added += len(chunk)
            else:
                done.removed += len(chunk)
    return done
