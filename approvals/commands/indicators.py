"""``block`` / ``unblock`` / ``indicators``: the indicator value and its options, validated strictly.

Every mistake is one sentence that names the value and the fix. The kinds follow MDE's indicator types
(post-ti-indicator.md): ``hash:`` picks FileSha1, FileSha256 or FileMd5 by length; CIDR ranges are refused
because the API does not support them.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import timedelta
from urllib.parse import urlsplit

from approvals.commands.models import IndicatorCommand, IndicatorListCommand, ParseError, Verb
from mde.models import IndicatorAction, IndicatorType

HASH_TYPES = {40: IndicatorType.FILE_SHA1, 64: IndicatorType.FILE_SHA256, 32: IndicatorType.FILE_MD5}
NAMED_HASHES = {"sha1": 40, "sha256": 64, "md5": 32}
KINDS = ("hash", "sha1", "sha256", "md5", "ip", "url", "domain")
ACTIONS = {"block": IndicatorAction.BLOCK, "audit": IndicatorAction.AUDIT, "warn": IndicatorAction.WARN}
DURATION = re.compile(r"^(\d{1,4})([hdw])$")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
MAX_URL = 2048
#: "Only external IPs can be added to the indicator list" (indicator-ip-domain.md): RFC 1918, loopback,
#: link-local, shared address space (CGNAT), unspecified, and IPv6 loopback, link-local and unique local
INTERNAL = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "100.64.0.0/10",
        "0.0.0.0/8",
        "::1/128",
        "::/128",
        "fe80::/10",
        "fc00::/7",
    )
)
MAX_GROUPS = 20


def indicator(text: str) -> tuple[IndicatorType, str]:
    """``hash:…``, ``sha1:…``, ``sha256:…``, ``md5:…``, ``ip:…``, ``url:…`` or ``domain:…`` → (type, value)."""
    kind, sep, value = text.partition(":")
    kind, value = kind.lower(), value.strip()
    if not sep or kind not in KINDS:
        raise ParseError(
            f"'{text[:80]}' is not an indicator; use hash:SHA256, ip:203.0.113.7, url:https://… or domain:NAME.",
            token=text[:80],
        )
    if not value:
        raise ParseError(f"'{kind}:' needs a value, e.g. {kind}:….", token=text[:80])
    if any(ord(ch) < 33 or ord(ch) == 127 for ch in value):
        raise ParseError(f"'{value[:80]}' contains spaces or control characters; an indicator is one word.")
    if kind in ("hash", *NAMED_HASHES):
        return _hash(kind, value)
    if kind == "ip":
        return IndicatorType.IP_ADDRESS, _ip(value)
    if kind == "url":
        return IndicatorType.URL, _url(value)
    return IndicatorType.DOMAIN_NAME, _domain(value)


def _hash(kind: str, value: str) -> tuple[IndicatorType, str]:
    if not _HEX.match(value):
        raise ParseError(f"'{value[:80]}' is not a hash: use hexadecimal digits only.")
    wanted = NAMED_HASHES.get(kind)
    if wanted is not None and len(value) != wanted:
        raise ParseError(f"A {kind.upper()} has {wanted} hex digits; '{value[:80]}' has {len(value)}.")
    if len(value) not in HASH_TYPES:
        raise ParseError(f"'{value[:80]}' has {len(value)} hex digits; a SHA-256 has 64, a SHA-1 40 and an MD5 32.")
    return HASH_TYPES[len(value)], value.lower()


def _ip(value: str) -> str:
    if "/" in value:
        raise ParseError(f"'{value}' is a range; MDE indicators take single addresses (no CIDR).")
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise ParseError(f"'{value[:80]}' is not an IP address.") from None
    if any(address in net for net in INTERNAL if net.version == address.version):
        raise ParseError(
            f"{address} is an internal address; MDE indicators take external IPs only (isolate or restrict the "
            "internal device instead)."
        )
    return str(address)


def _domain(value: str) -> str:
    name = value.lower().rstrip(".")
    if name.startswith("*."):
        raise ParseError("MDE domain indicators take a domain without wildcards; it covers the subdomains already.")
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise ParseError(f"'{value[:80]}' is not a domain name; e.g. domain:evil.example.com.")
    if labels[-1].isdigit():
        raise ParseError(f"'{value[:80]}' looks like an IP address; use ip:{value[:80]}.")
    return name


def _url(value: str) -> str:
    if len(value) > MAX_URL:
        raise ParseError(f"That URL is {len(value)} characters long; the limit is {MAX_URL}.")
    parts = urlsplit(value if "://" in value else "http://" + value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ParseError(f"'{value[:80]}' is not an http(s) URL; e.g. url:https://evil.example.com/payload.")
    if not _is_ip(parts.hostname):
        _domain(parts.hostname)
    return value


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def duration(text: str) -> timedelta:
    match = DURATION.match(text.strip().lower())
    if not match or int(match.group(1)) == 0:
        raise ParseError(f"--for takes a duration like 12h, 30d or 4w, not '{text[:40]}'.")
    number, unit = int(match.group(1)), match.group(2)
    return {"h": timedelta(hours=number), "d": timedelta(days=number), "w": timedelta(weeks=number)}[unit]


def groups(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(g.strip() for g in text.split(",") if g.strip()))
    if not names or len(names) > MAX_GROUPS or any(len(n) > 200 for n in names):
        raise ParseError(f'--groups takes 1 to {MAX_GROUPS} device group names, comma-separated: --groups "A, B".')
    return names


def build(verb: Verb, words: list[str], options: dict[str, str | None]) -> IndicatorCommand | IndicatorListCommand:
    """The command of ``block``, ``unblock`` or ``indicators`` from its words and options."""
    if verb is Verb.INDICATORS:
        if words:
            raise ParseError(f"indicators takes no value ('{words[0][:40]}'); it lists what this bot created.")
        return IndicatorListCommand()
    if len(words) != 1:
        example = f'{verb.value} hash:<sha256> --reason "…"'
        raise ParseError(
            f"{verb.value} takes exactly one indicator, e.g. {example}."
            if words
            else f"{verb.value} needs an indicator, e.g. {example}."
        )
    kind, value = indicator(words[0])
    reason = options.get("reason")
    if reason is None:
        raise ParseError(f'{verb.value} needs --reason "…": it becomes the indicator\'s description in MDE.')
    action = ACTIONS[(options.get("action") or "block").lower()]
    return IndicatorCommand(
        verb=verb,
        indicator_type=kind.value,
        value=value,
        reason=reason.strip(),
        action=action.value,
        expires_in=duration(options["for"] or "") if options.get("for") is not None else None,
        groups=groups(options["groups"] or "") if options.get("groups") is not None else (),
        dry_run="dry-run" in options,
    )
