"""The chat platforms: Slack's bot token against ``auth.test``, Teams' settings for its credential type.

Teams is not called: a Bot Connector token proves nothing until a user writes, so the settings it needs are
what the doctor can check.
"""

from __future__ import annotations

from pathlib import Path

from bot.doctor.report import Check, Context, guard_one, reason


async def check_chat(ctx: Context) -> list[Check]:
    settings = ctx.settings
    if not settings.slack_enabled and not settings.teams_enabled:
        return [
            Check(
                "chat",
                False,
                "no chat platform is enabled: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET "
                "(docs/deploy-slack.md) or TEAMS_APP_ID",
            )
        ]
    checks = []
    if settings.slack_enabled:
        checks.append(await guard_one("slack", lambda: check_slack(ctx)))
    if settings.teams_enabled:
        checks.append(check_teams(ctx))
    return checks


async def check_slack(ctx: Context) -> Check:
    from slack_sdk.errors import SlackApiError
    from slack_sdk.web.async_client import AsyncWebClient

    token = ctx.settings.slack_bot_token
    assert token is not None
    base_url = ctx.settings.slack_api_url or AsyncWebClient.BASE_URL
    client = AsyncWebClient(token=token.get_secret_value(), base_url=base_url, timeout=int(ctx.timeout_s))
    try:
        answer = await ctx.within(client.auth_test(), "Slack")
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else None
        return Check("slack", False, f"Slack rejected SLACK_BOT_TOKEN ({error or exc}): use the xoxb- bot token")
    except Exception as exc:
        return Check("slack", False, f"cannot reach Slack at {base_url}: {reason(exc)}")
    return Check("slack", True, f"auth.test: team {answer.get('team_id')}, bot user {answer.get('user_id')}")


def check_teams(ctx: Context) -> Check:
    settings = ctx.settings
    if settings.teams_auth == "playground":
        return Check("teams", False, "TEAMS_AUTH=playground is development only: it takes activities with no token")
    missing = [] if settings.teams_tenant_id else ["TEAMS_TENANT_ID"]
    if settings.teams_auth == "client_secret" and settings.teams_client_secret is None:
        missing.append("TEAMS_CLIENT_SECRET")
    if settings.teams_auth == "certificate":
        path = settings.teams_certificate_path
        if path is None:
            missing.append("TEAMS_CERTIFICATE_PATH")
        elif not Path(path).is_file():
            return Check("teams", False, f"TEAMS_CERTIFICATE_PATH={path} is not a readable file")
    if missing:
        return Check("teams", False, f"TEAMS_AUTH={settings.teams_auth} needs {', '.join(missing)}")
    return Check("teams", True, f"app {settings.teams_app_id}, TEAMS_AUTH={settings.teams_auth}")
