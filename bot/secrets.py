"""Secret settings given as references instead of values, resolved once at start-up.

* ``file:/run/secrets/slack-signing-secret`` — the file's content (trailing newline dropped): Docker and
  Kubernetes secrets mounted as files.
* ``@Microsoft.KeyVault(SecretUri=https://<vault>.vault.azure.net/secrets/<name>[/<version>])`` (the App
  Service / Functions syntax) or ``keyvault:https://<vault>.vault.azure.net/secrets/<name>[/<version>]`` —
  read from Azure Key Vault with the bot's managed identity (or any ``DefaultAzureCredential`` source).

Any other value is used as is. A reference that cannot be resolved stops the start with a message that
names the setting and the reason, never the secret.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from bot.config import Settings, SettingsError

_APP_SERVICE = re.compile(r"^@Microsoft\.KeyVault\(SecretUri=(?P<uri>[^)]+)\)$", re.IGNORECASE)
#: settings that may hold a reference although they are not SecretStr (a password inside a URL)
PLAIN_FIELDS = ("database_url", "mde_limiter_url")


def _key_vault_uri(value: str) -> str | None:
    match = _APP_SERVICE.match(value.strip())
    if match:
        return match.group("uri").strip()
    if value.startswith("keyvault:"):
        return value[len("keyvault:") :].strip()
    return None


def split_secret_uri(uri: str) -> tuple[str, str, str | None]:
    """``https://v.vault.azure.net/secrets/name[/version]`` -> (vault URL, name, version)."""
    parts = urlsplit(uri)
    segments = [s for s in parts.path.split("/") if s]
    if parts.scheme != "https" or len(segments) not in (2, 3) or segments[0] != "secrets":
        raise ValueError("expected https://<vault>.vault.azure.net/secrets/<name>[/<version>]")
    return f"https://{parts.netloc}", segments[1], segments[2] if len(segments) == 3 else None


class SecretResolver:
    def __init__(self, credential: Any = None, **client_options: Any) -> None:
        self._credential = credential
        self._client_options = client_options
        self._clients: dict[str, Any] = {}

    async def _from_key_vault(self, uri: str) -> str:
        from azure.keyvault.secrets.aio import SecretClient

        vault, name, version = split_secret_uri(uri)
        if self._credential is None:
            from azure.identity.aio import DefaultAzureCredential

            self._credential = DefaultAzureCredential()
        client = self._clients.get(vault)
        if client is None:
            client = SecretClient(vault_url=vault, credential=self._credential, **self._client_options)
            self._clients[vault] = client
        secret = await client.get_secret(name, version)
        if secret.value is None:
            raise ValueError(f"secret {name} has no value")
        return str(secret.value)

    async def resolve(self, value: str) -> str:
        if value.startswith("file:"):
            path = Path(value[len("file:") :])
            return (await asyncio.to_thread(path.read_text, encoding="utf-8")).rstrip("\r\n")
        uri = _key_vault_uri(value)
        return value if uri is None else await self._from_key_vault(uri)

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        close = getattr(self._credential, "close", None)
        if close is not None:
            await close()


def _is_reference(value: str) -> bool:
    return value.startswith("file:") or _key_vault_uri(value) is not None


async def resolve_settings(settings: Settings, resolver: SecretResolver | None = None) -> Settings:
    """A copy of ``settings`` with every reference replaced by the secret it points at."""
    resolver = resolver or SecretResolver()
    updates: dict[str, Any] = {}
    try:
        for name in type(settings).model_fields:
            value = getattr(settings, name)
            raw = value.get_secret_value() if isinstance(value, SecretStr) else value
            if not isinstance(raw, str) or not _is_reference(raw):
                continue
            if not isinstance(value, SecretStr) and name not in PLAIN_FIELDS:
                continue
            try:
                resolved = await resolver.resolve(raw)
            except Exception as exc:  # one sentence naming the setting; the reference is not secret, the value is
                reason = getattr(exc, "message", None) or getattr(exc, "strerror", None) or type(exc).__name__
                raise SettingsError(f"{name.upper()}: cannot read the secret it refers to ({reason})") from None
            updates[name] = SecretStr(resolved) if isinstance(value, SecretStr) else resolved
    finally:
        await resolver.close()
    return settings.model_copy(update=updates) if updates else settings
