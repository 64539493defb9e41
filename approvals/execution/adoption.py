"""Taking over a dead worker's claims with one listing of MDE's actions, not one look-up per device.

A job claimed again (its worker died mid-call, or a call ended ambiguously) may already have its MDE action:
the worker looks for an action carrying the request's marker before it submits, so a device is never
actioned twice. Per device that is one ``GET /api/machineactions`` each, from the 100-a-minute budget: a
restarted replica adopting a full batch would wait a minute or more for its look-ups alone. One listing per
request answers for the whole batch instead.

Why the listing answers for these devices: an action for a job is created after the job is (a worker
stores the jobs before any is claimed), so every action of this request's type created since the oldest job of
the group, less the same five-minute allowance for clock skew the poller uses, is in it. The listing is one
page (MDE's 10,000, newest first): when the page is not full it is complete, and a device absent from it has
no action of this request, as an empty per-device look-up says; when it is full (a request running for many
hours), the devices it does not show are looked up one by one as before.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from approvals.execution.actions import CLOCK_SKEW, marker
from approvals.execution.models import Job, JobKind
from approvals.requests.models import RequestRecord
from approvals.requests.states import RequestState
from approvals.verbs import ACTIONS
from mde.client import MAX_PAGE, MdeClient
from mde.errors import MdeError
from mde.models import ActionStatus, MachineAction

log = logging.getLogger(__name__)

#: below this many look-ups in one request, per-device look-ups cost no more than a listing
MIN_GROUP = 2


def needs_lookup(job: Job) -> bool:
    """A claim that may already have its action: claimed before (a dead worker) or failed ambiguously."""
    return job.kind == JobKind.DEVICE.value and (job.attempts > 1 or bool(job.error))


async def find_own_actions(
    client: MdeClient, batch: list[Job], records: dict[int, RequestRecord]
) -> dict[int, MachineAction | None]:
    """Job id -> the action its request already created on its device (None: it has none), for every job of
    ``batch`` answered by a listing; jobs left out are looked up one by one as before."""
    groups: defaultdict[int, list[Job]] = defaultdict(list)
    for job in batch:
        record = records.get(job.request_id)
        if record is not None and record.state != RequestState.CANCELLED.value and needs_lookup(job):
            groups[job.request_id].append(job)
    known: dict[int, MachineAction | None] = {}
    for request_id, group in groups.items():
        spec = ACTIONS.get(records[request_id].verb)
        if len(group) < MIN_GROUP or spec is None or spec.action_type is None:
            continue
        since = min(job.created_at for job in group) - CLOCK_SKEW
        try:
            listed = await client.list_machine_actions(type=spec.action_type, created_after=since, top=MAX_PAGE)
        except MdeError as exc:  # each job then looks for itself, and fails or retries on its own
            log.warning("listing request #%s's actions failed (%s); looking up device by device", request_id, exc)
            continue
        tag = marker(request_id)
        found: dict[str, MachineAction] = {}
        for action in listed:  # newest first, like the per-device look-up: the first match wins
            if tag in (action.requestor_comment or "") and action.status != ActionStatus.CANCELLED:
                found.setdefault(action.machine_id, action)
        complete = len(listed) < MAX_PAGE
        for job in group:
            mine = found.get(job.machine_ids[0])
            if mine is not None or complete:
                known[job.id] = mine
    return known
