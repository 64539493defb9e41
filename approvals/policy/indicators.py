"""The policy's indicator rules: values the bot never blocks, and IP ranges whose blocking only warns."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from approvals.policy.models import ProtectionPolicy
from mde.models import IndicatorType

HASH_TYPES = {IndicatorType.FILE_SHA1, IndicatorType.FILE_SHA256, IndicatorType.FILE_MD5}


def _host(kind: IndicatorType, value: str) -> str | None:
    if kind is IndicatorType.DOMAIN_NAME:
        return value.lower()
    if kind is IndicatorType.URL:
        return (urlsplit(value if "://" in value else "http://" + value).hostname or "").lower()
    return None


def _address(kind: IndicatorType, value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = value if kind is IndicatorType.IP_ADDRESS else _host(kind, value)
    try:
        return ipaddress.ip_address(text or "")
    except ValueError:
        return None


def never_block_reason(policy: ProtectionPolicy, kind: IndicatorType, value: str) -> str | None:
    """The rule of ``protection.never_block`` this indicator breaks, as a sentence; None when it breaks none."""
    host, address = _host(kind, value), _address(kind, value)
    for rule in policy.never_block:
        rule_kind, _, rule_value = rule.partition(":")
        rule_value = rule_value.strip()
        if rule_kind == "hash" and kind in HASH_TYPES and value.lower() == rule_value.lower():
            return f"the policy never blocks the file {rule_value}"
        if rule_kind == "domain" and host and (host == rule_value.lower() or host.endswith("." + rule_value.lower())):
            return f"the policy never blocks {rule_value} or its subdomains"
        if rule_kind == "ip" and address is not None:
            network = ipaddress.ip_network(rule_value, strict=False)
            if network.version == address.version and address in network:
                return f"the policy never blocks addresses in {rule_value}"
        if rule_kind == "url" and kind is IndicatorType.URL and value.lower().startswith(rule_value.lower()):
            return f"the policy never blocks URLs under {rule_value}"
    return None


def allowlisted_range(policy: ProtectionPolicy, kind: IndicatorType, value: str) -> str | None:
    """The allow-listed range (``protection.allowlisted_ip_ranges``) an IP or URL host falls in, if any."""
    address = _address(kind, value)
    if address is None:
        return None
    for text in policy.allowlisted_ip_ranges:
        network = ipaddress.ip_network(text.strip(), strict=False)
        if network.version == address.version and address in network:
            return text.strip()
    return None
