"""All settings in one object (house style 5): environment variables and an optional ``.env`` file,
validated at start-up, failing with a message that names the setting."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.loopback import playground_refusal


class MdeAuth(StrEnum):
    STATIC = "static"  # a fixed bearer token: the simulator
    CLIENT_SECRET = "client_secret"
    CERTIFICATE = "certificate"
    MANAGED_IDENTITY = "managed_identity"


class HuntingApi(StrEnum):
    GRAPH = "graph"  # Microsoft Graph runHuntingQuery (ThreatHunting.Read.All): the default
    MDE = "mde"  # MDE's own /api/advancedqueries/run, retired since January 2026 (MC1220762)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False)

    # storage
    database_url: str = Field("sqlite:///mde-chatops.db", description="SQLAlchemy URL; postgresql://… in production")

    # MDE
    mde_base_url: str | None = Field(None, description="API base URL; default from MDE_CLOUD")
    mde_cloud: str = Field("global", description="global, us, eu, uk, au, gcc, gcc_high, dod")
    mde_auth: MdeAuth = MdeAuth.MANAGED_IDENTITY
    mde_tenant_id: str | None = None
    mde_client_id: str | None = None
    mde_client_secret: SecretStr | None = None
    mde_certificate_path: Path | None = None
    mde_static_token: SecretStr | None = None
    mde_scope: str | None = Field(None, description="token scope override")
    mde_time_scale: float = Field(1.0, gt=0, description="divide MDE rate-limit windows (simulator only)")
    mde_minute_limit: int = Field(100, ge=1)
    mde_hour_limit: int = Field(1500, ge=1)
    hunting_api: HuntingApi = Field(
        HuntingApi.GRAPH, description="advanced hunting through Microsoft Graph (graph) or MDE's retired API (mde)"
    )
    graph_base_url: str | None = Field(None, description="Microsoft Graph root; default from MDE_CLOUD")
    graph_scope: str | None = Field(None, description="Graph token scope override; default {graph root}/.default")
    graph_static_token: SecretStr | None = Field(None, description="MDE_AUTH=static: the Graph token (default: MDE's)")
    mde_limiter_url: str | None = Field(
        None,
        description="where replicas share the MDE rate-limit budget: postgresql://…, redis://… or memory:// "
        "(this process only); default: DATABASE_URL when it is PostgreSQL, else this process only",
    )

    # policy and engine
    policy_file: Path | None = None
    worker_concurrency: int = Field(16, ge=1, le=256)
    poll_interval_s: float = Field(5.0, gt=0)
    worker_stale_s: float = Field(30.0, gt=0)
    #: this replica's stable identity (a StatefulSet pod name, a host name): restarted under the same id, a
    #: worker adopts its own claims at once instead of after WORKER_STALE_S. Never share one between two
    #: live processes. Unset: a fresh random id per process.
    worker_id: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,59}$")
    #: how long a replica that stopped delivering a surface's feed keeps it before another takes over
    delivery_lease_s: float = Field(30.0, ge=2.0, le=600.0)
    #: how often MDE's isolate/unisolate actions are read for drift (one run across replicas); 0 turns it off
    reconcile_interval_s: float = Field(900.0, ge=0.0, le=86400.0)

    # web server
    host: str = "127.0.0.1"
    port: int = Field(3978, ge=0, le=65535)
    metrics_token: SecretStr | None = Field(
        None, description="bearer token GET /metrics requires; unset: /metrics is open (keep it internal)"
    )
    log_format: str = Field("text", pattern="^(text|json)$")
    log_level: str = "INFO"

    # Slack
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_socket_mode: bool = False
    slack_api_url: str | None = Field(None, description="override the Web API base URL (tests)")

    # incident notifications (POST /api/incidents)
    incidents_secret: SecretStr | None = Field(None, description="HMAC key for X-MDE-ChatOps-Signature")
    incidents_token: SecretStr | None = Field(None, description="bearer token a Logic App sends instead")
    rules_file: Path | None = Field(None, description="incident routing and proposal rules (YAML)")

    # Teams
    teams_app_id: str | None = None
    teams_tenant_id: str | None = None
    teams_auth: str = Field(
        "client_secret",
        pattern="^(client_secret|certificate|managed_identity|system_managed_identity|static|playground)$",
        description="how the bot gets its own token; static: a fixed token for a local Bot Connector; "
        "playground: the Agents Playground on loopback, no tokens either way (development only)",
    )
    teams_client_secret: SecretStr | None = None
    teams_certificate_path: Path | None = None
    teams_static_token: SecretStr | None = None
    teams_cloud: str = Field(
        "public",
        pattern="^(public|gcc|gcc_high|dod)$",
        description="the Microsoft cloud Teams runs in: its token issuer and serviceUrl host (bot.teams.clouds)",
    )
    teams_openid_metadata_url: str | None = Field(
        None, description="Bot Framework OpenID metadata for inbound token checks; default: TEAMS_CLOUD's (tests)"
    )
    teams_allowed_callers: str = Field(
        "",
        description="comma-separated app ids whose own Entra tokens may call /api/messages (never as a person); "
        "empty: Teams channel tokens only",
    )
    teams_entra_metadata_url: str | None = Field(None, description="Entra OpenID metadata override")
    teams_playground_url: str | None = Field(
        None, description="TEAMS_AUTH=playground: the Playground's connector, http://127.0.0.1:PORT/_connector"
    )
    teams_read_groups: bool = Field(
        False, description="read Entra group membership from Graph for entra-group: principals (GroupMember.Read.All)"
    )
    teams_graph_url: str = Field("https://graph.microsoft.com", description="Microsoft Graph (sovereign clouds, tests)")
    teams_service_hosts: str | None = Field(
        None,
        description="comma-separated hosts an activity's serviceUrl may point at (replies go there); "
        "default: TEAMS_CLOUD's Teams host",
    )

    @model_validator(mode="after")
    def _check_mde_auth(self) -> Settings:
        needs = {
            MdeAuth.STATIC: ["mde_static_token"],
            MdeAuth.CLIENT_SECRET: ["mde_tenant_id", "mde_client_id", "mde_client_secret"],
            MdeAuth.CERTIFICATE: ["mde_tenant_id", "mde_client_id", "mde_certificate_path"],
            MdeAuth.MANAGED_IDENTITY: [],
        }[self.mde_auth]
        missing = [name.upper() for name in needs if getattr(self, name) in (None, "")]
        if missing:
            raise ValueError(f"MDE_AUTH={self.mde_auth.value} needs {', '.join(missing)}")
        if self.slack_bot_token and not (self.slack_signing_secret or self.slack_socket_mode):
            raise ValueError("SLACK_BOT_TOKEN is set but SLACK_SIGNING_SECRET is not (needed to verify Slack requests)")
        if self.teams_app_id:
            teams_needs = {
                "client_secret": ["teams_tenant_id", "teams_client_secret"],
                "certificate": ["teams_tenant_id", "teams_certificate_path"],
                "managed_identity": ["teams_tenant_id"],
                "system_managed_identity": ["teams_tenant_id"],
                "static": ["teams_tenant_id", "teams_static_token"],
                "playground": ["teams_tenant_id", "teams_playground_url"],
            }[self.teams_auth]
            teams_missing = [name.upper() for name in teams_needs if getattr(self, name) in (None, "")]
            if teams_missing:
                raise ValueError(f"TEAMS_AUTH={self.teams_auth} needs {', '.join(teams_missing)}")
            if self.teams_auth == "playground":
                refused = playground_refusal(
                    host=self.host, playground_url=self.teams_playground_url, mde_base_url=self.mde_base_url
                )
                if refused:
                    raise ValueError(refused)
        if self.slack_socket_mode and not self.slack_app_token:
            raise ValueError("SLACK_SOCKET_MODE=true needs SLACK_APP_TOKEN (xapp-…)")
        return self

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None

    @property
    def teams_enabled(self) -> bool:
        return self.teams_app_id is not None


class SettingsError(Exception):
    """Settings that do not validate; the message names each bad setting."""


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]).upper() or "settings"
            lines.append(f"{where}: {error['msg']}")
        raise SettingsError("Invalid settings:\n  " + "\n  ".join(lines)) from None
