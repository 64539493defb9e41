"""The bot's own identity for outbound calls to the Bot Connector (replies, card updates, proactive posts).

Production uses MSAL through the Agents SDK (single-tenant: client secret, certificate or managed
identity). ``static`` hands a fixed token to a local Bot Connector (the mock in tests and demos), the
same way ``MDE_AUTH=static`` does for the MDE simulator.
"""

from __future__ import annotations

from typing import Any

from microsoft_agents.hosting.core.authorization import (
    AgentAuthConfiguration,
    AuthTypes,
    ConnectionManager,
)

AUTH_TYPES = {
    "client_secret": AuthTypes.client_secret,
    "certificate": AuthTypes.certificate,
    "managed_identity": AuthTypes.user_managed_identity,
    "system_managed_identity": AuthTypes.system_managed_identity,
}


class StaticTokenProvider:
    """An ``AccessTokenProviderBase`` with one fixed token (local Bot Connector only)."""

    def __init__(self, configuration: AgentAuthConfiguration, token: str) -> None:
        self._configuration = configuration
        self._token = token

    @property
    def configuration(self) -> AgentAuthConfiguration:
        return self._configuration

    async def get_access_token(self, resource_url: str, scopes: list[str], force_refresh: bool = False) -> str:
        return self._token

    def get_token_credential(self) -> Any:
        raise NotImplementedError("a static token has no credential object")


def bot_connections(
    *,
    app_id: str,
    tenant_id: str | None,
    auth: str,
    client_secret: str | None = None,
    certificate_path: str | None = None,
    static_token: str | None = None,
) -> ConnectionManager:
    if auth == "static":
        config = AgentAuthConfiguration(client_id=app_id, tenant_id=tenant_id)
        token = static_token or ""
        return ConnectionManager(
            provider_factory=lambda cfg: StaticTokenProvider(cfg, token),  # type: ignore[arg-type,return-value]
            connections_configurations={"SERVICE_CONNECTION": config},
        )
    from microsoft_agents.authentication.msal import MsalConnectionManager

    config = AgentAuthConfiguration(
        auth_type=AUTH_TYPES[auth],
        client_id=app_id,
        tenant_id=tenant_id,
        client_secret=client_secret,
        cert_pfx_file=certificate_path,
    )
    return MsalConnectionManager(connections_configurations={"SERVICE_CONNECTION": config})
