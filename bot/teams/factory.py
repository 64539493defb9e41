"""Build the Teams surface from settings."""

from __future__ import annotations

from microsoft_agents.hosting.core.authorization import ConnectionManager

from approvals.service import ChatOps
from bot.config import Settings
from bot.teams.auth import BotFrameworkAuth
from bot.teams.clouds import CLOUDS
from bot.teams.connections import bot_connections
from bot.teams.ingress import TeamsIngress
from bot.teams.surface import TeamsSurface


def _names(value: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in value.split(",") if n.strip())


def teams_surface_from_settings(settings: Settings, chatops: ChatOps) -> TeamsSurface:
    assert settings.teams_app_id is not None and settings.teams_tenant_id is not None
    if settings.teams_auth == "playground":
        return _playground_surface(settings, chatops)
    cloud = CLOUDS[settings.teams_cloud]
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
        channel_issuer=cloud.issuer,
        bot_framework_metadata_url=settings.teams_openid_metadata_url or cloud.metadata_url,
        allowed_callers=frozenset(_names(settings.teams_allowed_callers)),
        entra_metadata_url=settings.teams_entra_metadata_url,
    )
    hosts = _names(settings.teams_service_hosts) if settings.teams_service_hosts else (cloud.service_host,)
    graph_url = settings.teams_graph_url if settings.teams_read_groups else None
    return _surface(settings, chatops, connections, TeamsIngress(auth, settings.teams_tenant_id, hosts), graph_url)


def _playground_surface(settings: Settings, chatops: ChatOps) -> TeamsSurface:
    """The Agents Playground on loopback (``bot.teams.playground``; settings refused it unless all is loopback)."""
    from urllib.parse import urlsplit

    from bot.loopback import playground_refusal
    from bot.teams.playground import CONNECTOR_TOKEN, PlaygroundVerifier, announce

    url = settings.teams_playground_url or ""
    refused = playground_refusal(host=settings.host, playground_url=url, mde_base_url=settings.mde_base_url)
    if refused:  # settings validation already said so; this guards settings built without it
        raise ValueError(refused)
    announce(settings.host, settings.port, url)
    assert settings.teams_app_id is not None and settings.teams_tenant_id is not None
    # the Playground's connector asks for no token; the SDK still wants a provider, so it gets a fixed dummy one
    connections = bot_connections(
        app_id=settings.teams_app_id, tenant_id=settings.teams_tenant_id, auth="static", static_token=CONNECTOR_TOKEN
    )
    ingress = TeamsIngress(PlaygroundVerifier(url), settings.teams_tenant_id, (urlsplit(url).hostname or "",))
    return _surface(settings, chatops, connections, ingress, graph_url=None)


def _surface(
    settings: Settings, chatops: ChatOps, connections: ConnectionManager, ingress: TeamsIngress, graph_url: str | None
) -> TeamsSurface:
    assert settings.teams_app_id is not None
    return TeamsSurface(
        chatops, app_id=settings.teams_app_id, connections=connections, ingress=ingress, graph_url=graph_url
    )
