"""Verify the bearer token on every activity posted to ``/api/messages`` (the ``CallerVerifier`` of
``bot.teams.ingress`` for real Teams traffic).

The Agents SDK's own validator fetches signing keys from fixed Microsoft URLs, so it cannot be pointed
at a sovereign cloud's metadata or at a local key set in tests. This one follows the same Bot Framework
rules (``botframework-connector``'s channel validation) with PyJWT, and is stricter where the SDK is lax:

* RS256 signature by a key from the issuer's OpenID metadata (keys cached, refreshed on an unknown ``kid``);
* issuer: the Bot Framework channel issuer of the configured cloud (``https://api.botframework.com``), and
  nothing else by default. Entra issues tokens for the bot's app id to *any* app registration in the
  tenant, so an Entra-issued token says nothing about a Teams user: it is accepted only from an app on
  ``allowed_callers`` (its ``azp`` / ``appid``, and ``tid`` = the tenant), and that caller is an app;
* audience: the bot's app id; ``exp`` / ``nbf`` with five minutes of clock skew;
* the key's ``endorsements`` include the activity's ``channelId`` when the key lists any;
* the ``serviceurl`` claim equals the activity's ``serviceUrl`` (a token for one service URL cannot
  send the bot's replies somewhere else).

Every failure raises ``AuthError`` with a short reason that is logged, never the token.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from bot.teams.clouds import CLOUDS
from bot.teams.ingress import Caller, CallerKind, Unauthorized

log = logging.getLogger(__name__)

BOT_FRAMEWORK_ISSUER = CLOUDS["public"].issuer
BOT_FRAMEWORK_METADATA = CLOUDS["public"].metadata_url
ENTRA_METADATA = "https://login.microsoftonline.com/{tenant}/v2.0/.well-known/openid-configuration"
CLOCK_SKEW_S = 300
KEYS_TTL_S = 24 * 3600
REFRESH_MIN_S = 300  # an unknown kid refreshes the keys at most this often


class AuthError(Unauthorized):
    """The request is not from the Bot Framework for this bot; the message says why (no secrets)."""


@dataclass
class _KeySet:
    metadata_url: str
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    fetched_at: float = 0.0


@dataclass
class BotFrameworkAuth:
    app_id: str
    tenant_id: str | None = None
    #: the Bot Framework channel issuer (``https://api.botframework.us`` in US Government clouds)
    channel_issuer: str = BOT_FRAMEWORK_ISSUER
    #: Bot Framework OpenID metadata (sovereign clouds and tests point this elsewhere)
    bot_framework_metadata_url: str = BOT_FRAMEWORK_METADATA
    #: app ids whose own Entra-issued tokens are let in, as apps (``TEAMS_ALLOWED_CALLERS``); none by default
    allowed_callers: frozenset[str] = frozenset()
    #: Entra OpenID metadata for allowed callers' tokens (v1 and v2 issuers)
    entra_metadata_url: str | None = None
    http_timeout_s: float = 10.0
    _sets: dict[str, _KeySet] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def _metadata_for(self, issuer: str) -> str:
        if issuer == self.channel_issuer:
            return self.bot_framework_metadata_url
        if (
            self.allowed_callers
            and self.tenant_id
            and issuer
            in (
                f"https://sts.windows.net/{self.tenant_id}/",
                f"https://login.microsoftonline.com/{self.tenant_id}/v2.0",
            )
        ):
            return self.entra_metadata_url or ENTRA_METADATA.format(tenant=self.tenant_id)
        raise AuthError("token issuer is not accepted")

    async def _fetch(self, key_set: _KeySet) -> None:
        async with httpx.AsyncClient(timeout=self.http_timeout_s) as http:
            metadata = (await http.get(key_set.metadata_url)).raise_for_status().json()
            jwks = (await http.get(metadata["jwks_uri"])).raise_for_status().json()
        key_set.keys = {str(k["kid"]): k for k in jwks.get("keys", []) if "kid" in k}
        key_set.fetched_at = time.monotonic()

    async def _key(self, metadata_url: str, kid: str) -> dict[str, Any]:
        async with self._lock:
            key_set = self._sets.setdefault(metadata_url, _KeySet(metadata_url))
            age = time.monotonic() - key_set.fetched_at
            stale = not key_set.keys or age > KEYS_TTL_S
            unknown = kid not in key_set.keys and age > REFRESH_MIN_S
            if stale or unknown:
                try:
                    await self._fetch(key_set)
                except (httpx.HTTPError, KeyError, ValueError) as exc:
                    raise AuthError(f"signing keys unavailable ({type(exc).__name__})") from None
        key = key_set.keys.get(kid)
        if key is None:
            raise AuthError("token signed by an unknown key")
        return key

    async def verify(self, authorization: str | None, activity: Mapping[str, Any] | None) -> Caller:
        """The verified caller, or ``AuthError``; with ``activity`` None only the token itself is checked."""
        if not authorization:
            raise AuthError("no Authorization header")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or " " in token:
            raise AuthError("Authorization is not a bearer token")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise AuthError("malformed token") from None
        if header.get("alg") != "RS256" or not header.get("kid"):
            raise AuthError("token is not RS256-signed with a key id")
        issuer = unverified.get("iss")
        metadata_url = self._metadata_for(issuer if isinstance(issuer, str) else "")
        key = await self._key(metadata_url, str(header["kid"]))
        endorsements = key.get("endorsements")
        if endorsements and activity is not None and str(activity.get("channelId") or "") not in endorsements:
            raise AuthError("signing key is not endorsed for this channel")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=jwt.PyJWK(key).key,
                algorithms=["RS256"],
                audience=self.app_id,
                issuer=issuer,
                leeway=CLOCK_SKEW_S,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise AuthError(f"token rejected ({type(exc).__name__})") from None
        if issuer != self.channel_issuer:
            return self._allowed_app(claims)
        claimed_url = str(claims.get("serviceurl") or claims.get("serviceUrl") or "")
        service_url = str(activity.get("serviceUrl") or "") if activity is not None else claimed_url
        if not claimed_url or claimed_url.rstrip("/").lower() != service_url.rstrip("/").lower():
            raise AuthError("serviceUrl does not match the token")
        return Caller(kind=CallerKind.TEAMS_USER, claims=claims)

    def _allowed_app(self, claims: dict[str, Any]) -> Caller:
        """An Entra-issued token: the app that asked for it must be allow-listed, in this tenant."""
        app = str(claims.get("azp") or claims.get("appid") or "")
        if app not in self.allowed_callers:
            raise AuthError("the calling app is not on TEAMS_ALLOWED_CALLERS")
        if str(claims.get("tid") or "").lower() != (self.tenant_id or "").lower():
            raise AuthError("the calling app's token is for another tenant")
        return Caller(kind=CallerKind.APP, claims=claims, app_id=app)
