"""How the bot reaches MDE from its settings: the token provider, the API base URL, the client.

One place for ``serve``, the worker processes and ``doctor``, so the doctor checks what the bot will use.
"""

from __future__ import annotations

from bot.config import Settings
from mde.auth import TokenProvider, token_provider_from_settings
from mde.client import MdeClient
from mde.clouds import Cloud, cloud_endpoints
from mde.ratelimit import RateLimiter


def token_provider(settings: Settings) -> TokenProvider:
    return token_provider_from_settings(
        auth=settings.mde_auth.value,
        tenant_id=settings.mde_tenant_id,
        client_id=settings.mde_client_id,
        client_secret=settings.mde_client_secret.get_secret_value() if settings.mde_client_secret else None,
        certificate_path=str(settings.mde_certificate_path) if settings.mde_certificate_path else None,
        static_token=settings.mde_static_token.get_secret_value() if settings.mde_static_token else None,
        cloud=Cloud(settings.mde_cloud),
        scope=settings.mde_scope,
    )


def api_base_url(settings: Settings) -> str:
    return settings.mde_base_url or cloud_endpoints(Cloud(settings.mde_cloud)).api_base_url


def build_client(settings: Settings, limiter: RateLimiter) -> MdeClient:
    return MdeClient(api_base_url(settings), token_provider(settings), limiter=limiter)
