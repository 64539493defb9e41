"""Who is speaking, and from where. Surfaces build these; policy and audit read them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Actor:
    """A person (or the system) acting through a surface.

    ``user_id`` is the platform's stable id (Slack ``U…``, Entra object id for Teams, the console name).
    ``groups`` are the platform groups the surface knows the user is in (Slack user-group ids, Entra
    group ids); policy matches on any of user id, email or group.
    """

    platform: str  # "slack" | "teams" | "console" | "system"
    user_id: str
    display_name: str = ""
    email: str | None = None
    groups: frozenset[str] = field(default_factory=frozenset)

    @property
    def key(self) -> str:
        """The identity the two-person rule compares: one person on one platform."""
        return f"{self.platform}:{self.user_id}"

    def label(self) -> str:
        return self.display_name or self.email or self.user_id


SYSTEM = Actor(platform="system", user_id="mde-chatops", display_name="mde-chatops")


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a request was made, so its card, thread and summary go back there."""

    surface: str  # "slack" | "teams" | "console"
    channel_id: str
    #: platform-specific extra needed to post back (Teams conversation reference JSON, Slack team id…)
    context: str | None = None
