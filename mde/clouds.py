"""Which API host, sign-in authority, token scope and Microsoft Graph host each cloud uses (shared reference §1–§2).

Sources: the MDE API hosts from defender-endpoint/api/run-advanced-query-api.md (the "server closer to your
geolocation" tip) and defender-endpoint/gov.md; the Graph hosts from Microsoft Graph's concepts/deployments.md
("Microsoft Graph national cloud deployments": GCC keeps graph.microsoft.com, GCC High uses graph.microsoft.us,
DoD dod-graph.microsoft.us) and concepts/sdks/national-clouds.md (a Graph scope uses the cloud's Graph host).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

COMMERCIAL_SCOPE = "https://api.securitycenter.microsoft.com/.default"
PUBLIC_AUTHORITY = "login.microsoftonline.com"
GOV_AUTHORITY = "login.microsoftonline.us"
GRAPH_GLOBAL = "https://graph.microsoft.com"
GRAPH_US_GOV_L4 = "https://graph.microsoft.us"
GRAPH_US_GOV_L5 = "https://dod-graph.microsoft.us"

#: every documented commercial MDE API host: a nextLink may point at any of them (they serve one tenant's data)
COMMERCIAL_API_HOSTS = frozenset(
    {
        "api.security.microsoft.com",
        "api.securitycenter.microsoft.com",
        *(f"{region}.api.security.microsoft.com" for region in ("us", "eu", "uk", "au", "swa", "ina", "aea")),
        # the 2021 include (improve-request-performance.md) named these; third-party tools still use them
        *(f"api-{region}.securitycenter.microsoft.com" for region in ("us", "eu", "uk", "au")),
    }
)


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
    graph_base_url: str = GRAPH_GLOBAL
    #: hosts an ``@odata.nextLink`` may lead to; the token is never sent anywhere else
    api_hosts: frozenset[str] = COMMERCIAL_API_HOSTS

    @property
    def graph_scope(self) -> str:
        return f"{self.graph_base_url}/.default"


def _commercial(host: str) -> CloudEndpoints:
    return CloudEndpoints(f"https://{host}", PUBLIC_AUTHORITY, COMMERCIAL_SCOPE)


def _gov(host: str, authority: str, graph: str) -> CloudEndpoints:
    # Government clouds: API hosts per DD-ep:gov.md. The token scope is UNCONFIRMED in Microsoft's docs;
    # third-party scripts use the API host's /.default, which is what we do (override with MDE_SCOPE).
    return CloudEndpoints(f"https://{host}", authority, f"https://{host}/.default", graph, frozenset({host}))


_ENDPOINTS = {
    Cloud.GLOBAL: _commercial("api.security.microsoft.com"),
    Cloud.US: _commercial("us.api.security.microsoft.com"),
    Cloud.EU: _commercial("eu.api.security.microsoft.com"),
    Cloud.UK: _commercial("uk.api.security.microsoft.com"),
    Cloud.AU: _commercial("au.api.security.microsoft.com"),
    Cloud.GCC: _gov("api-gcc.securitycenter.microsoft.us", PUBLIC_AUTHORITY, GRAPH_GLOBAL),
    Cloud.GCC_HIGH: _gov("api-gov.securitycenter.microsoft.us", GOV_AUTHORITY, GRAPH_US_GOV_L4),
    Cloud.DOD: _gov("api-gov.securitycenter.microsoft.us", GOV_AUTHORITY, GRAPH_US_GOV_L5),
}


def cloud_endpoints(cloud: Cloud | str) -> CloudEndpoints:
    try:
        return _ENDPOINTS[Cloud(cloud)]
    except ValueError:
        names = ", ".join(c.value for c in Cloud)
        raise ValueError(f"unknown MDE cloud {cloud!r}: use one of {names}") from None
