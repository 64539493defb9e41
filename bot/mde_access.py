"""How the bot reaches MDE from its settings: the token provider, the API base URL, the client.

One place for ``serve``, the worker processes and ``doctor``, so the doctor checks what the bot will use.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import SecretStr

from bot.config import HuntingApi, Settings
from mde.auth import TokenProvider, token_provider_from_settings
from mde.client import MdeClient
from mde.clouds import Cloud, cloud_endpoints
from mde.graph import GraphClient
from mde.ratelimit import RateLimiter


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value else None


def token_provider(settings: Settings, *, graph: bool = False) -> TokenProvider:
    """The MDE token, or with ``graph`` the Microsoft Graph one: same identity, another audience."""
    return token_provider_from_settings(
        auth=settings.mde_auth.value,
        tenant_id=settings.mde_tenant_id,
        client_id=settings.mde_client_id,
        client_secret=_secret(settings.mde_client_secret),
        certificate_path=str(settings.mde_certificate_path) if settings.mde_certificate_path else None,
        static_token=_secret((settings.graph_static_token if graph else None) or settings.mde_static_token),
        cloud=Cloud(settings.mde_cloud),
        scope=graph_scope(settings) if graph else settings.mde_scope,
    )


def api_base_url(settings: Settings) -> str:
    return settings.mde_base_url or cloud_endpoints(Cloud(settings.mde_cloud)).api_base_url


def graph_base_url(settings: Settings) -> str:
    return (settings.graph_base_url or cloud_endpoints(Cloud(settings.mde_cloud)).graph_base_url).rstrip("/")


def graph_scope(settings: Settings) -> str:
    return settings.graph_scope or f"{graph_base_url(settings)}/.default"


def build_client(
    settings: Settings, limiter: RateLimiter, *, on_response: Callable[[str, int], None] | None = None
) -> MdeClient:
    """``on_response``: the metrics hook, called with (family, HTTP status) for every answer from MDE."""
    graph = None
    if settings.hunting_api is HuntingApi.GRAPH:
        graph = GraphClient(graph_base_url(settings), token_provider(settings, graph=True), limiter=limiter)
    hosts = cloud_endpoints(Cloud(settings.mde_cloud)).api_hosts
    return MdeClient(
        api_base_url(settings),
        token_provider(settings),
        limiter=limiter,
        graph=graph,
        api_hosts=hosts,
        on_response=on_response,
    )
