"""Which API host, sign-in authority and token scope each cloud uses (shared reference §1–§2)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

COMMERCIAL_SCOPE = "https://api.securitycenter.microsoft.com/.default"
PUBLIC_AUTHORITY = "login.microsoftonline.com"


class Cloud(StrEnum):
    GLOBAL = "global"
    US = "us"
    EU = "eu"
    UK = "uk"
    AU = "au"
    GCC = "gcc"
    GCC_HIGH = "gcc_high"
    DOD = "dod"


@dataclass(frozen=True, slots=True)
class CloudEndpoints:
    api_base_url: str
    authority_host: str
    scope: str


_ENDPOINTS = {
    Cloud.GLOBAL: CloudEndpoints("https://api.security.microsoft.com", PUBLIC_AUTHORITY, COMMERCIAL_SCOPE),
    Cloud.US: CloudEndpoints("https://us.api.security.microsoft.com", PUBLIC_AUTHORITY, COMMERCIAL_SCOPE),
    Cloud.EU: CloudEndpoints("https://eu.api.security.microsoft.com", PUBLIC_AUTHORITY, COMMERCIAL_SCOPE),
    Cloud.UK: CloudEndpoints("https://uk.api.security.microsoft.com", PUBLIC_AUTHORITY, COMMERCIAL_SCOPE),
    Cloud.AU: CloudEndpoints("https://au.api.security.microsoft.com", PUBLIC_AUTHORITY, COMMERCIAL_SCOPE),
    # Government clouds: API hosts per DD-ep:gov.md. The token scope is UNCONFIRMED in Microsoft's docs;
    # third-party scripts use the API host's /.default, which is what we do (override with MDE_SCOPE).
    Cloud.GCC: CloudEndpoints(
        "https://api-gcc.securitycenter.microsoft.us",
        PUBLIC_AUTHORITY,
        "https://api-gcc.securitycenter.microsoft.us/.default",
    ),
    Cloud.GCC_HIGH: CloudEndpoints(
        "https://api-gov.securitycenter.microsoft.us",
        "login.microsoftonline.us",
        "https://api-gov.securitycenter.microsoft.us/.default",
    ),
    Cloud.DOD: CloudEndpoints(
        "https://api-gov.securitycenter.microsoft.us",
        "login.microsoftonline.us",
        "https://api-gov.securitycenter.microsoft.us/.default",
    ),
}


def cloud_endpoints(cloud: Cloud | str) -> CloudEndpoints:
    try:
        return _ENDPOINTS[Cloud(cloud)]
    except ValueError:
        names = ", ".join(c.value for c in Cloud)
        raise ValueError(f"unknown MDE cloud {cloud!r}: use one of {names}") from None
