"""Build the Slack surface from settings."""

from __future__ import annotations

from approvals.service import ChatOps
from bot.config import Settings
from bot.slack.surface import SlackSurface


def slack_surface_from_settings(settings: Settings, chatops: ChatOps) -> SlackSurface:
    assert settings.slack_bot_token is not None and settings.slack_signing_secret is not None
    return SlackSurface(
        chatops,
        bot_token=settings.slack_bot_token.get_secret_value(),
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        api_url=settings.slack_api_url,
    )
