"""Build the Teams surface from settings."""

from __future__ import annotations

from approvals.service import ChatOps
from bot.config import Settings
from bot.teams.auth import BotFrameworkAuth
from bot.teams.connections import bot_connections
from bot.teams.surface import TeamsSurface


def teams_surface_from_settings(settings: Settings, chatops: ChatOps) -> TeamsSurface:
    assert settings.teams_app_id is not None
    connections = bot_connections(
        app_id=settings.teams_app_id,
        tenant_id=settings.teams_tenant_id,
        auth=settings.teams_auth,
        client_secret=settings.teams_client_secret.get_secret_value() if settings.teams_client_secret else None,
        certificate_path=str(settings.teams_certificate_path) if settings.teams_certificate_path else None,
        static_token=settings.teams_static_token.get_secret_value() if settings.teams_static_token else None,
    )
    auth = BotFrameworkAuth(
        app_id=settings.teams_app_id,
        tenant_id=settings.teams_tenant_id,
        bot_framework_metadata_url=settings.teams_openid_metadata_url,
        entra_metadata_url=settings.teams_entra_metadata_url,
    )
    hosts = tuple(h.strip() for h in settings.teams_service_hosts.split(",") if h.strip())
    return TeamsSurface(
        chatops,
        app_id=settings.teams_app_id,
        connections=connections,
        auth=auth,
        service_hosts=hosts,
        graph_url=settings.teams_graph_url if settings.teams_read_groups else None,
    )
