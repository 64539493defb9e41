"""Build the Slack surface from settings."""

from __future__ import annotations

from approvals.service import ChatOps
from bot.config import Settings
from bot.slack.surface import SlackSurface


def slack_surface_from_settings(settings: Settings, chatops: ChatOps) -> SlackSurface:
    assert settings.slack_bot_token is not None
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    app_token = (
        settings.slack_app_token.get_secret_value() if settings.slack_socket_mode and settings.slack_app_token else None
    )
    return SlackSurface(
        chatops,
        bot_token=settings.slack_bot_token.get_secret_value(),
        signing_secret=secret,
        api_url=settings.slack_api_url,
        app_token=app_token,
    )
