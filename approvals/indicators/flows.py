"""``block`` / ``unblock`` requests and the ``indicators`` list.

A block request has no device snapshot: its card carries the indicator, its scope and expiry, and every
warning (a file seen on many devices, an IP in an allow-listed range, an indicator it would replace). On
approval the job engine stores one job that makes the MDE call (``execution.run``), so a crash between
approval and the call loses nothing, and the usual summary closes the request.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from approvals.commands.models import IndicatorCommand, IndicatorListCommand, Verb
from approvals.identity import Actor, Origin
from approvals.indicators import messaging
from approvals.policy.indicators import allowlisted_range, never_block_reason
from approvals.requests.proposer import Proposer
from approvals.views import Reply
from mde.errors import PermissionDenied
from mde.models import Indicator, IndicatorType

HASHES = {IndicatorType.FILE_SHA1, IndicatorType.FILE_SHA256, IndicatorType.FILE_MD5}


class IndicatorFlows:
    def __init__(self, proposer: Proposer) -> None:
        self.proposer = proposer
        self.client, self.policy, self.clock = proposer.client, proposer.policy, proposer.clock

    @property
    def application(self) -> str:
        return self.policy.model.indicators.application

    async def handle(self, actor: Actor, origin: Origin, command: IndicatorCommand | IndicatorListCommand) -> Reply:
        if isinstance(command, IndicatorListCommand):
            return await self._list()
        refusal = self.proposer.refusal(actor, origin, command.verb)
        if refusal is not None:
            return refusal
        if command.verb is Verb.UNBLOCK:
            return await self._unblock(actor, origin, command)
        return await self._block(actor, origin, command)

    async def _ours(self, **filters: Any) -> list[Indicator]:
        return await self.client.list_indicators(application=self.application, **filters)

    async def _list(self) -> Reply:
        now = self.clock()
        found = sorted(await self._ours(), key=lambda i: i.expiration_time or datetime.max.replace(tzinfo=UTC))
        if not found:
            return Reply(text='This bot has no active indicator in MDE. Create one with: block hash:… --reason "…"')
        cap = self.policy.model.indicators.max_active
        lines = [f"Indicators this bot created ({len(found)} of at most {cap}), soonest expiry first:"]
        lines += [messaging.list_line(i, now) for i in found[:50]]
        if len(found) > 50:
            lines.append(f"… and {len(found) - 50} more")
        return Reply(text="\n".join(lines))

    async def _block(self, actor: Actor, origin: Origin, command: IndicatorCommand) -> Reply:
        kind, value = IndicatorType(command.indicator_type), command.value
        rules = self.policy.model
        refusal = never_block_reason(rules.protection, kind, value)
        if refusal:
            return Reply(text=f"Refused: {refusal} (protection.never_block in the policy).", error=True)
        lifetime = command.expires_in or timedelta(days=rules.indicators.default_days)
        if lifetime > timedelta(days=rules.indicators.max_days):
            return Reply(
                text=f"--for is at most {rules.indicators.max_days} days (indicators.max_days in the policy).",
                error=True,
            )
        ours = await self._ours()
        same = [i for i in ours if i.indicator_type == kind.value and i.indicator_value.lower() == value.lower()]
        if not same and len(ours) >= rules.indicators.max_active:
            return Reply(
                text=f"This bot already has {len(ours)} active indicators, the cap (indicators.max_active in the "
                "policy); unblock some first (`indicators` lists them).",
                error=True,
            )
        now = self.clock()
        expires_at = now + lifetime
        lines = messaging.card_lines(
            kind=kind.value,
            value=value,
            action=command.action,
            groups=command.groups,
            expires_at=expires_at,
            now=now,
        )
        lines += await self._warnings(kind, value, command.action)
        lines += [
            f"Replaces indicator {i.id} ({i.action}, expires {messaging.when(i.expiration_time, now)}): MDE updates "
            "it in place."
            for i in await self.client.list_indicators(value=value, indicator_type=kind)
        ]
        if command.dry_run:
            return Reply(text="Dry run, nothing requested.\n" + "\n".join(lines))
        params = {
            "indicator_type": kind.value,
            "value": value,
            "action": command.action,
            "groups": list(command.groups),
            "expires_at": expires_at.isoformat(),
            "application": self.application,
        }
        record_id = await self._create(actor, origin, command, params, lines)
        return await self.proposer.created(
            record_id,
            f"Request #{record_id} created: {command.action} {messaging.typed(kind.value, value)} on "
            f"{messaging.scope(command.groups)} until {expires_at:%Y-%m-%d %H:%M} UTC; it needs approval by "
            "someone other than you.",
        )

    async def _warnings(self, kind: IndicatorType, value: str, action: str) -> list[str]:
        protection = self.policy.model.protection
        out = []
        if kind in HASHES:
            try:
                stats = await self.client.get_file_stats(value)
            except PermissionDenied:
                out.append("Could not check how common the file is: the app lacks File.Read.All.")
            else:
                if stats is None:
                    out.append("MDE has not seen this file in the organization in the last 30 days.")
                elif stats.org_prevalence > protection.common_file_devices:
                    names = ", ".join(stats.top_file_names[:3]) or "unknown name"
                    out.append(
                        f"Common file: MDE saw it on {stats.org_prevalence} devices in the last 30 days ({names}); "
                        f"{action.lower()} affects all of them."
                    )
        allowlisted = allowlisted_range(protection, kind, value)
        if allowlisted:
            out.append(
                f"{value} is in the allow-listed range {allowlisted} (protection.allowlisted_ip_ranges): "
                "something the organization relies on may stop working."
            )
        if action == "Warn":
            out.append("Warn lets users bypass the block after a prompt.")
        return out

    async def _unblock(self, actor: Actor, origin: Origin, command: IndicatorCommand) -> Reply:
        kind, value = IndicatorType(command.indicator_type), command.value
        found = await self._ours(value=value, indicator_type=kind)
        if not found:
            return Reply(
                text=f"No active indicator this bot created matches {messaging.typed(kind.value, value)}; "
                "`indicators` lists them (indicators made in the portal are removed there).",
                error=True,
            )
        now = self.clock()
        lines = [
            f"Removes indicator {i.id}: {i.indicator_type} {i.indicator_value} → {i.action} on "
            f"{messaging.scope(i.rbac_group_names)}, expires {messaging.when(i.expiration_time, now)}."
            for i in found
        ]
        params = {
            "indicator_type": kind.value,
            "value": value,
            "indicator_ids": [i.id for i in found],
            "action": found[0].action,
            "application": self.application,
        }
        record_id = await self._create(actor, origin, command, params, lines)
        return await self.proposer.created(
            record_id,
            f"Request #{record_id} created: unblock {messaging.typed(kind.value, value)}; it needs approval by "
            "someone other than you.",
        )

    async def _create(
        self, actor: Actor, origin: Origin, command: IndicatorCommand, params: dict[str, Any], lines: list[str]
    ) -> int:
        async with self.proposer.db.transaction() as session:
            record = await self.proposer.insert(
                session,
                actor,
                origin,
                verb=command.verb,
                params=params,
                reason=command.reason,
                target_text=messaging.typed(command.indicator_type, command.value),
                lines=lines,
            )
        return record.id
