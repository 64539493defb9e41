"""What the block/unblock card and the ``indicators`` list say (platform-neutral lines)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from mde.models import Indicator, IndicatorType

#: the prefix a chat user types for each indicator type
PREFIX = {
    IndicatorType.FILE_SHA256: "hash",
    IndicatorType.FILE_SHA1: "sha1",
    IndicatorType.FILE_MD5: "md5",
    IndicatorType.CERTIFICATE_THUMBPRINT: "cert",
    IndicatorType.IP_ADDRESS: "ip",
    IndicatorType.URL: "url",
    IndicatorType.DOMAIN_NAME: "domain",
}
EXPIRES_SOON_DAYS = 7
_REQUEST = re.compile(r"\[mde-chatops #(\d+)\]")


def typed(kind: str, value: str) -> str:
    """``hash:…`` as the user would type it (the card's target)."""
    return f"{PREFIX.get(IndicatorType(kind), kind)}:{value}"


def scope(groups: Sequence[str]) -> str:
    return "device groups " + ", ".join(groups) if groups else "every device in the tenant"


def when(at: datetime | None, now: datetime) -> str:
    if at is None:
        return "never"
    days = (at - now).total_seconds() / 86400
    left = f"in {days:.0f} days" if days >= 1.5 else f"in {max(0.0, days * 24):.0f} hours"
    return f"{at:%Y-%m-%d %H:%M} UTC ({left})"


def card_lines(
    *, kind: str, value: str, action: str, groups: Sequence[str], expires_at: datetime, now: datetime
) -> list[str]:
    return [
        f"Indicator: {kind} {value} → {action} (MDE raises an alert when it matches)",
        f"Scope: {scope(groups)}",
        f"Expires: {when(expires_at, now)}",
    ]


def list_line(indicator: Indicator, now: datetime) -> str:
    request = _REQUEST.search(indicator.description or "")
    origin = f" · request #{request.group(1)}" if request else ""
    soon = ""
    if indicator.expiration_time is not None and (indicator.expiration_time - now).days < EXPIRES_SOON_DAYS:
        soon = " · expires soon"
    return (
        f"{indicator.indicator_type} {indicator.indicator_value} → {indicator.action} · "
        f"{scope(indicator.rbac_group_names)} · expires {when(indicator.expiration_time, now)}{soon}{origin}"
    )
