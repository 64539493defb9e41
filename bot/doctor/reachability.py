"""What MDE itself answers: one cheap device listing, and the alerts listing riskiest first reads.

Each is one call without retries, so the doctor proves host, token and permission in seconds and never
spends more of MDE's per-minute budgets than that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.doctor.entra import ALERTS_CHECK, ALERTS_WARNING, READ_ROLES
from bot.doctor.report import Borrowed, Check, Context, one_line
from bot.mde_access import api_base_url
from mde.auth import TokenProvider

if TYPE_CHECKING:
    from mde.client import MdeClient
    from mde.models import Machine


def client_for(ctx: Context, provider: TokenProvider) -> MdeClient:
    from mde.client import MdeClient
    from mde.retry import RetryPolicy

    return MdeClient(
        api_base_url(ctx.settings), Borrowed(provider), timeout=ctx.timeout_s, retry=RetryPolicy(max_attempts=1)
    )


async def check_mde_api(ctx: Context, provider: TokenProvider) -> Check:
    """One cheap call (``GET /api/machines?$top=1``), no retries: proves host, token and read access."""
    from mde.errors import AuthenticationFailed, MdeError, PermissionDenied, RateLimited

    base_url = api_base_url(ctx.settings)
    client = client_for(ctx, provider)
    try:
        first = await ctx.within(first_machine(client), "MDE")
    except AuthenticationFailed:
        return Check(
            "mde api",
            False,
            f"{base_url} rejected the token (401): check MDE_TENANT_ID and MDE_SCOPE (the token must be for "
            "WindowsDefenderATP)",
        )
    except PermissionDenied as exc:
        return Check(
            "mde api",
            False,
            f"{base_url} refused GET /api/machines (403 {exc.code or 'Forbidden'}): grant "
            f"{exc.missing_role or READ_ROLES[0]} and admin consent, or fix the token audience (MDE_SCOPE)",
        )
    except RateLimited as exc:
        return Check("mde api", True, f"{base_url} answered, but throttled (429, retry after {exc.retry_after} s)")
    except MdeError as exc:
        return Check("mde api", False, f"cannot use MDE at {base_url}: {one_line(exc)} (check MDE_BASE_URL)")
    finally:
        await client.aclose()
    seen = "one device listed" if first is not None else "no devices onboarded yet"
    return Check("mde api", True, f"GET {base_url}/api/machines?$top=1: {seen}")


async def check_alerts(ctx: Context, provider: TokenProvider) -> Check:
    """``Alert.Read.All`` is optional (riskiest first falls back to risk score without it), so whatever MDE
    answers is at worst a warning: the listing riskiest first makes, cut to one alert, proves the permission."""
    from mde.errors import MdeError, PermissionDenied, RateLimited

    client = client_for(ctx, provider)
    try:
        await ctx.within(client.list_alerts(page_size=1, max_pages=1, retry_throttled=False), "MDE")
    except PermissionDenied:
        return Check(ALERTS_CHECK, True, ALERTS_WARNING, warning=True)
    except RateLimited as exc:
        return Check(ALERTS_CHECK, True, f"not checked: throttled (429, retry after {exc.retry_after} s)")
    except (MdeError, TimeoutError) as exc:
        return Check(
            ALERTS_CHECK,
            True,
            f"not checked: GET /api/alerts failed ({one_line(exc)}), so riskiest first may order by risk score only",
            warning=True,
        )
    finally:
        await client.aclose()
    return Check(ALERTS_CHECK, True, "GET /api/alerts answered")


async def first_machine(client: MdeClient) -> Machine | None:
    async for machine in client.iter_machines(page_size=1):
        return machine
    return None
