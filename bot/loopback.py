"""Loopback-only settings: what ``TEAMS_AUTH=playground`` requires before it may start (``bot.config`` checks it
at load time, ``bot.teams.playground`` again when it builds the surface). Standard library only, so settings
can use it without importing any surface."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def loopback_ip(host: str | None) -> bool:
    """An IP literal in 127.0.0.0/8 or ``::1``; a name (``localhost`` included) could resolve anywhere."""
    try:
        return ipaddress.ip_address((host or "").strip("[]")).is_loopback
    except ValueError:
        return False


def loopback_url(url: str | None) -> bool:
    parts = urlsplit(url or "")
    return parts.scheme in ("http", "https") and not parts.username and loopback_ip(parts.hostname)


def playground_refusal(*, host: str, playground_url: str | None, mde_base_url: str | None) -> str | None:
    """Why ``TEAMS_AUTH=playground`` may not run with these settings (one sentence naming the setting), or None."""
    if not loopback_ip(host):
        return f"TEAMS_AUTH=playground needs HOST to be a loopback IP (127.0.0.1 or ::1), not {host!r}"
    if not loopback_url(playground_url):
        return "TEAMS_AUTH=playground needs TEAMS_PLAYGROUND_URL to be the Playground's connector on loopback"
    if not loopback_url(mde_base_url):
        return "TEAMS_AUTH=playground needs MDE_BASE_URL to be the MDE simulator on loopback"
    return None
