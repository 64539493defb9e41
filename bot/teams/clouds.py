"""Where Teams traffic comes from, per Microsoft cloud: the Bot Framework token issuer and its OpenID
metadata (what ``/api/messages`` accepts), and the host Teams' ``serviceUrl`` names (where replies go).

Sources: Teams service URLs as Microsoft lists them (``TeamsServiceEndpoints`` in the Agents SDK for JS,
``TeamsProactiveServiceEndpoints`` in the Agents SDK for .NET: public ``smba.trafficmanager.net``, GCC
``smba.infra.gcc.teams.microsoft.com``, GCC High ``smba.infra.gov.teams.microsoft.us``, DoD
``smba.infra.dod.teams.microsoft.us``); issuers and metadata from ``botframework-connector``'s
``AuthenticationConstants`` / ``GovernmentAuthenticationConstants`` (GCC runs on the public Azure cloud,
GCC High and DoD on Azure Government).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TeamsCloud:
    issuer: str
    metadata_url: str
    service_host: str


_PUBLIC_ISSUER = "https://api.botframework.com"
_PUBLIC_METADATA = "https://login.botframework.com/v1/.well-known/openidconfiguration"
_GOV_ISSUER = "https://api.botframework.us"
_GOV_METADATA = "https://login.botframework.azure.us/v1/.well-known/openidconfiguration"

CLOUDS: dict[str, TeamsCloud] = {
    "public": TeamsCloud(_PUBLIC_ISSUER, _PUBLIC_METADATA, "smba.trafficmanager.net"),
    "gcc": TeamsCloud(_PUBLIC_ISSUER, _PUBLIC_METADATA, "smba.infra.gcc.teams.microsoft.com"),
    "gcc_high": TeamsCloud(_GOV_ISSUER, _GOV_METADATA, "smba.infra.gov.teams.microsoft.us"),
    "dod": TeamsCloud(_GOV_ISSUER, _GOV_METADATA, "smba.infra.dod.teams.microsoft.us"),
}
