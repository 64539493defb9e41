"""``RequestReads``: the read side of ``ChatOps`` — the card's view, ``status``, ``history`` and the CSV.

Reads never change a request, so they live apart from the facade's commands: ``ChatOps`` hands them the
storage, the MDE client (a fresh collect-file link), the limiter and the worker (a card's ETA).
"""

from __future__ import annotations

from typing import Any

from approvals.commands.models import HistoryCommand
from approvals.containment.flows import ContainmentFlows
from approvals.db import Database
from approvals.execution.flows import Worker
from approvals.identity import Origin
from approvals.requests import service as requests
from approvals.requests import views as request_views
from approvals.requests.labels import action_label
from approvals.requests.models import DeviceState, RequestRecord
from approvals.text import status_line
from approvals.verbs import ACTIONS
from approvals.views import DeviceRow, Reply, RequestView
from mde.client import MdeClient


class RequestReads:
    def __init__(
        self,
        db: Database,
        client: MdeClient,
        containment: ContainmentFlows,
        *,
        worker: Worker | None = None,
        limiter: Any = None,
    ) -> None:
        """``worker`` and ``limiter`` feed the ETA on a card; a process without them shows none."""
        self.db = db
        self.client = client
        self.containment = containment
        self.worker = worker
        self.limiter = limiter

    async def view(self, request_id: int) -> RequestView:
        async with self.db.sessions() as session:
            view = await request_views.build_view(session, request_id, eta_seconds=await self._eta(session, request_id))
        if view is None:
            raise KeyError(request_id)
        return view

    async def lives_in(self, request_id: int, surface: str, channel_id: str) -> bool:
        """Whether the request's card is in this conversation: a forged button from another chat must not
        read another channel's devices."""
        async with self.db.sessions() as session:
            record = await requests.get_request(session, request_id)
        return record is not None and (record.origin_surface, record.origin_channel) == (surface, channel_id)

    async def _eta(self, session: Any, request_id: int) -> float | None:
        record = await requests.get_request(session, request_id)
        if record is None or record.state not in ("approved", "executing"):
            return None
        progress = await requests.progress_for(session, request_id)
        remaining = progress.total - progress.submitted - progress.skipped - progress.cancelled
        submit = 0.0
        spec = ACTIONS.get(record.verb)
        if self.limiter is not None and spec is not None and remaining > 0:
            submit = float(self.limiter.estimate_wait(spec.family, remaining))
        action = self.worker.mean_action_seconds() if self.worker is not None else None
        return submit + (action or 0.0)

    async def status(self, request_id: int | None, origin: Origin) -> Reply:
        async with self.db.sessions() as session:
            if request_id is not None:
                record = await requests.get_request(session, request_id)
                if record is None:
                    return Reply(text=f"There is no request #{request_id}.", error=True)
                records = [record]
            else:
                records = await requests.open_requests(session)
            if not records:
                return Reply(text="No request is open.")
            lines = [] if request_id is not None else ["Open requests:"]
            for record in records:
                approvals = sum(1 for d in await requests.decisions_for(session, record.id) if d.approve)
                lines.append(
                    status_line(
                        request_id=record.id,
                        action_label=action_label(record.verb, record.params or {}),
                        state=record.state,
                        progress=await requests.progress_for(session, record.id),
                        approvals=approvals,
                        required=record.required_approvals,
                    )
                )
        if request_id is not None:
            lines += await self._fresh_results(records[0], origin)
        return Reply(text="\n".join(lines))

    async def _fresh_results(self, record: RequestRecord, origin: Origin) -> list[str]:
        """A verb whose result expires (collect-file's 30-minute link) gets a fresh one, in its own conversation
        only: a request number typed elsewhere must not hand out another channel's file."""
        spec = ACTIONS.get(record.verb)
        here = (record.origin_surface, record.origin_channel) == (origin.surface, origin.channel_id)
        if spec is None or spec.result is None or not here:
            return []
        async with self.db.sessions() as session:
            devices = await requests.devices_for(session, record.id)
        lines = []
        for device in devices:
            if device.state is DeviceState.SUCCEEDED and device.action_id:
                action = await self.client.get_machine_action(device.action_id)
                lines.append(await spec.result(self.client, action))
        return lines

    async def history(self, command: HistoryCommand) -> Reply:
        async with self.db.sessions() as session:
            records = await requests.recent_requests(session, limit=command.limit, device=command.device)
        timeline = await self.containment.timeline(command.device) if command.device else []
        if not records:
            return Reply(text="\n".join(timeline) if timeline else "No requests yet.")
        lines = [f"Last {len(records)} request(s):"]
        for record in records:
            lines.append(
                f"#{record.id} {record.created_at:%Y-%m-%d %H:%M} {action_label(record.verb, record.params or {})}"
                f" by {record.requester_label}: {record.state}"
            )
        return Reply(text="\n".join([*lines, *timeline]))

    async def results_csv(self, request_id: int) -> str:
        async with self.db.sessions() as session:
            return await request_views.results_csv(session, request_id)

    async def device_rows(self, request_id: int, *, limit: int) -> list[DeviceRow]:
        """The first devices of a request, by name, read from storage ("show all": a view holds only a few)."""
        async with self.db.sessions() as session:
            return await request_views.device_rows(session, request_id, limit=limit)
