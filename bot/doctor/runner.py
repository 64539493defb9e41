"""The order the checks run in, the report, and the command line.

Settings first (nothing else can run without them), then the policy (its verbs decide which permissions
matter), the database, the MDE token, its roles and MDE itself, hunting's token, and the chat platforms.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import TextIO

from approvals.db import Database
from approvals.policy import Policy
from approvals.verbs import Verb
from bot.config import Settings, SettingsError, load_settings
from bot.doctor.chat import check_chat
from bot.doctor.config import check_database, check_policy
from bot.doctor.entra import alerts_from_roles, check_hunting, check_roles, mde_token
from bot.doctor.reachability import check_alerts, check_mde_api
from bot.doctor.report import DEFAULT_TIMEOUT_S, Borrowed, Check, Context, guard, one_line, render
from bot.mde_access import token_provider as make_token_provider
from bot.secrets import resolve_settings
from mde.auth import TokenProvider


class Doctor:
    def __init__(
        self,
        settings: Settings,
        *,
        db: Database | None = None,
        token_provider: TokenProvider | None = None,
        graph_token_provider: TokenProvider | None = None,
        policy: Policy | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.settings = settings
        self._db = db
        self._provider = token_provider
        self._graph_provider = graph_token_provider
        self._policy = policy
        self.timeout_s = timeout_s

    async def run(self) -> list[Check]:
        ctx = Context(self.settings, self.timeout_s)
        checks: list[Check] = [Check("settings", True, f"MDE_AUTH={self.settings.mde_auth.value}")]
        policy_check, verbs = check_policy(ctx, self._policy)
        checks.append(policy_check)
        checks += await guard("database", lambda: check_database(ctx, self._db))
        checks += await guard("mde token", lambda: self._check_mde(ctx, verbs))
        if verbs:  # anyone who may request anything may target query:, and schedules run hunting queries
            checks += await guard("hunting", lambda: check_hunting(ctx, self._graph_provider))
        checks += await guard("chat", lambda: check_chat(ctx))
        return checks

    async def _check_mde(self, ctx: Context, verbs: Sequence[Verb]) -> list[Check]:
        """Token, its roles, then MDE's answers, all with one provider (the bot's own when it lends it)."""
        owned = self._provider is None
        provider = make_token_provider(self.settings) if self._provider is None else Borrowed(self._provider)
        try:
            token_check, claims = await mde_token(ctx, provider)
            if not token_check.ok:
                return [token_check]
            checks = [token_check, *check_roles(ctx, claims, verbs)]
            api = await check_mde_api(ctx, provider)
            checks.append(api)
            if verbs:  # riskiest first orders the devices of a request; without requests it has nothing to order
                alerts = alerts_from_roles(claims)
                if alerts is None and api.ok:
                    alerts = await check_alerts(ctx, provider)
                if alerts is not None:
                    checks.append(alerts)
            return checks
        finally:
            if owned:
                await provider.close()


async def run_checks(
    settings: Settings | None = None,
    *,
    db: Database | None = None,
    token_provider: TokenProvider | None = None,
    graph_token_provider: TokenProvider | None = None,
    policy: Policy | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[Check]:
    if settings is None:
        try:
            # the same settings serve runs with: file: and Key Vault references resolved
            settings = await resolve_settings(load_settings())
        except SettingsError as exc:
            message = str(exc).replace(":\n  ", ": ").replace("\n  ", "; ")
            return [Check("settings", False, one_line(message, limit=1000))]
    doctor = Doctor(
        settings,
        db=db,
        token_provider=token_provider,
        graph_token_provider=graph_token_provider,
        policy=policy,
        timeout_s=timeout_s,
    )
    return await doctor.run()


async def doctor_report(
    settings: Settings | None = None,
    *,
    db: Database | None = None,
    token_provider: TokenProvider | None = None,
    policy: Policy | None = None,
) -> str:
    """The report as text for the chat ``doctor`` command: one line per check, then a summary line.

    Pass the running process's objects to check what it really uses; a borrowed database or token provider
    is neither disposed nor closed.
    """
    return render(await run_checks(settings, db=db, token_provider=token_provider, policy=policy))


def main(out: TextIO = sys.stdout) -> int:
    """The CLI: exit 0 when every check passes (warnings included), 1 otherwise."""
    logging.getLogger("azure").setLevel(logging.CRITICAL)  # its failures are in our FAIL lines already
    checks = asyncio.run(run_checks())
    print(render(checks), file=out)
    return 0 if all(c.ok for c in checks) else 1
