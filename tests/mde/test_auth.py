"""Tokens: cached, refreshed before expiry, fetched once under concurrency, never shown; cloud endpoints."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from mde.auth import AzureCredentialTokenProvider, StaticTokenProvider, token_provider_from_settings
from mde.clouds import COMMERCIAL_SCOPE, Cloud, cloud_endpoints


@dataclass
class AccessToken:
    token: str
    expires_on: int


class CountingCredential:
    """Stands in for an azure-identity credential: the provider's caching is what is under test."""

    def __init__(self, lifetime: int = 3600) -> None:
        self.calls: list[str] = []
        self.lifetime = lifetime
        self.now = 1_000_000

    async def get_token(self, *scopes: str) -> AccessToken:
        self.calls.append(scopes[0])
        await asyncio.sleep(0)
        return AccessToken(f"secret-token-{len(self.calls)}", self.now + self.lifetime)


async def test_token_is_cached_and_fetched_once_under_concurrency() -> None:
    credential = CountingCredential()
    provider = AzureCredentialTokenProvider(credential, COMMERCIAL_SCOPE, clock=lambda: credential.now)
    tokens = await asyncio.gather(*(provider.get_token() for _ in range(20)))
    assert set(tokens) == {"secret-token-1"} and credential.calls == [COMMERCIAL_SCOPE]


async def test_token_is_refreshed_five_minutes_before_expiry() -> None:
    credential = CountingCredential(lifetime=3600)
    provider = AzureCredentialTokenProvider(credential, COMMERCIAL_SCOPE, clock=lambda: credential.now)
    assert await provider.get_token() == "secret-token-1"
    credential.now += 3600 - 301
    assert await provider.get_token() == "secret-token-1"
    credential.now += 2
    assert await provider.get_token() == "secret-token-2"
    provider.invalidate()
    assert await provider.get_token() == "secret-token-3"


async def test_tokens_never_appear_in_reprs() -> None:
    credential = CountingCredential()
    provider = AzureCredentialTokenProvider(credential, COMMERCIAL_SCOPE)
    await provider.get_token()
    assert "secret-token" not in repr(provider)
    assert "hunter2" not in repr(StaticTokenProvider("hunter2"))


@pytest.mark.parametrize(
    ("cloud", "host", "authority"),
    [
        (Cloud.GLOBAL, "https://api.security.microsoft.com", "login.microsoftonline.com"),
        (Cloud.EU, "https://eu.api.security.microsoft.com", "login.microsoftonline.com"),
        (Cloud.GCC, "https://api-gcc.securitycenter.microsoft.us", "login.microsoftonline.com"),
        (Cloud.GCC_HIGH, "https://api-gov.securitycenter.microsoft.us", "login.microsoftonline.us"),
        (Cloud.DOD, "https://api-gov.securitycenter.microsoft.us", "login.microsoftonline.us"),
    ],
)
def test_cloud_endpoints(cloud: Cloud, host: str, authority: str) -> None:
    endpoints = cloud_endpoints(cloud)
    assert endpoints.api_base_url == host and endpoints.authority_host == authority
    assert endpoints.scope.endswith("/.default")


@pytest.mark.parametrize(
    ("cloud", "graph"),
    [
        (Cloud.GLOBAL, "https://graph.microsoft.com"),
        (Cloud.EU, "https://graph.microsoft.com"),
        (Cloud.GCC, "https://graph.microsoft.com"),  # GCC keeps the worldwide Graph (Graph deployments.md)
        (Cloud.GCC_HIGH, "https://graph.microsoft.us"),
        (Cloud.DOD, "https://dod-graph.microsoft.us"),
    ],
)
def test_each_cloud_hunts_on_its_documented_graph_host(cloud: Cloud, graph: str) -> None:
    endpoints = cloud_endpoints(cloud)
    assert endpoints.graph_base_url == graph
    assert endpoints.graph_scope == f"{graph}/.default"


def test_next_links_may_only_lead_to_the_clouds_documented_api_hosts() -> None:
    commercial = cloud_endpoints(Cloud.EU).api_hosts
    assert {"api.security.microsoft.com", "eu.api.security.microsoft.com", "aea.api.security.microsoft.com"} <= set(
        commercial
    )
    assert "api-gov.securitycenter.microsoft.us" not in commercial
    assert cloud_endpoints(Cloud.GCC_HIGH).api_hosts == {"api-gov.securitycenter.microsoft.us"}


def test_commercial_clouds_use_the_windows_defender_atp_scope() -> None:
    assert cloud_endpoints("us").scope == "https://api.securitycenter.microsoft.com/.default"
    with pytest.raises(ValueError, match="unknown MDE cloud"):
        cloud_endpoints("mars")


def test_provider_factory_builds_each_kind_and_rejects_unknown() -> None:
    assert isinstance(token_provider_from_settings(auth="static", static_token="t"), StaticTokenProvider)
    secret = token_provider_from_settings(
        auth="client_secret", tenant_id="t", client_id="c", client_secret="s", cloud="gcc_high"
    )
    assert isinstance(secret, AzureCredentialTokenProvider)
    assert secret.scope == "https://api-gov.securitycenter.microsoft.us/.default"
    assert isinstance(token_provider_from_settings(auth="managed_identity"), AzureCredentialTokenProvider)
    with pytest.raises(ValueError, match="unknown MDE_AUTH"):
        token_provider_from_settings(auth="password")
