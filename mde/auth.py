"""Entra tokens for the MDE API: azure-identity async credentials, cached and refreshed before expiry.

Tokens are never logged, never put in exception messages, and never in a repr.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

from mde.clouds import Cloud, cloud_endpoints

REFRESH_MARGIN_S = 300.0


class TokenProvider(Protocol):
    async def get_token(self) -> str: ...

    def invalidate(self) -> None: ...

    async def close(self) -> None: ...


class StaticTokenProvider:
    """A fixed bearer token: the simulator."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "StaticTokenProvider(token=***)"

    async def get_token(self) -> str:
        return self._token

    def invalidate(self) -> None:
        return None

    async def close(self) -> None:
        return None


class AzureCredentialTokenProvider:
    """Wraps an azure-identity async credential; one refresh at a time under concurrency."""

    def __init__(self, credential: Any, scope: str, *, clock: Any = time.time) -> None:
        self._credential = credential
        self._scope = scope
        self._clock = clock
        self._token: str | None = None
        self._expires_on = 0.0
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"AzureCredentialTokenProvider(scope={self._scope!r}, credential={type(self._credential).__name__})"

    @property
    def scope(self) -> str:
        return self._scope

    async def get_token(self) -> str:
        if self._token and self._clock() < self._expires_on - REFRESH_MARGIN_S:
            return self._token
        async with self._lock:
            if self._token and self._clock() < self._expires_on - REFRESH_MARGIN_S:
                return self._token
            access = await self._credential.get_token(self._scope)
            self._token, self._expires_on = access.token, float(access.expires_on)
            return self._token

    def invalidate(self) -> None:
        self._token, self._expires_on = None, 0.0

    async def close(self) -> None:
        close = getattr(self._credential, "close", None)
        if close is not None:
            await close()


def token_provider_from_settings(
    *,
    auth: str,
    tenant_id: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    certificate_path: str | None = None,
    static_token: str | None = None,
    cloud: Cloud | str = Cloud.GLOBAL,
    scope: str | None = None,
) -> TokenProvider:
    """Build the provider for ``auth`` = static | client_secret | certificate | managed_identity."""
    endpoints = cloud_endpoints(cloud)
    scope = scope or endpoints.scope
    if auth == "static":
        if not static_token:
            raise ValueError("MDE_AUTH=static needs MDE_STATIC_TOKEN")
        return StaticTokenProvider(static_token)
    from azure.identity.aio import CertificateCredential, ClientSecretCredential, ManagedIdentityCredential

    if auth == "client_secret":
        credential: Any = ClientSecretCredential(
            tenant_id or "", client_id or "", client_secret or "", authority=endpoints.authority_host
        )
    elif auth == "certificate":
        credential = CertificateCredential(
            tenant_id or "",
            client_id or "",
            certificate_path=certificate_path,
            authority=endpoints.authority_host,
        )
    elif auth == "managed_identity":
        credential = ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()
    else:
        raise ValueError(f"unknown MDE_AUTH {auth!r}: use static, client_secret, certificate or managed_identity")
    return AzureCredentialTokenProvider(credential, scope)
