"""Secret settings as file: and Key Vault references, resolved with the real Key Vault client over HTTPS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import SettingsError, load_settings
from bot.secrets import SecretResolver, resolve_settings, split_secret_uri
from tests.support.mock_keyvault import MockKeyVault, StaticCredential


@pytest.fixture
async def vault() -> AsyncIterator[MockKeyVault]:
    kv = MockKeyVault(secrets={"slack-signing": "s3cr3t-from-vault", "db-url": "postgresql://u:pw@db/x"})
    await kv.start()
    yield kv
    await kv.stop()


def _resolver(vault: MockKeyVault, credential: StaticCredential) -> SecretResolver:
    return SecretResolver(credential, connection_verify=vault.ca_file, verify_challenge_resource=False)


async def test_key_vault_references_are_read_with_the_managed_identity(vault: MockKeyVault) -> None:
    credential = StaticCredential()
    settings = load_settings(
        slack_bot_token="xoxb-plain",
        slack_signing_secret=f"@Microsoft.KeyVault(SecretUri={vault.url}/secrets/slack-signing)",
        database_url=f"keyvault:{vault.url}/secrets/db-url",
        mde_auth="static",
        mde_static_token="t",
    )
    resolved = await resolve_settings(settings, _resolver(vault, credential))
    assert resolved.slack_signing_secret is not None
    assert resolved.slack_signing_secret.get_secret_value() == "s3cr3t-from-vault"
    assert resolved.database_url == "postgresql://u:pw@db/x"
    assert resolved.slack_bot_token is not None and resolved.slack_bot_token.get_secret_value() == "xoxb-plain"
    assert credential.scopes == ["https://vault.azure.net/.default"]  # asked for Key Vault, after the challenge
    assert vault.unauthorized >= 1


async def test_a_missing_secret_names_the_setting_not_the_value(vault: MockKeyVault) -> None:
    settings = load_settings(
        slack_bot_token="xoxb-plain",
        slack_signing_secret=f"keyvault:{vault.url}/secrets/nope",
        mde_auth="static",
        mde_static_token="t",
    )
    with pytest.raises(SettingsError, match="SLACK_SIGNING_SECRET: cannot read the secret") as caught:
        await resolve_settings(settings, _resolver(vault, StaticCredential()))
    assert "s3cr3t" not in str(caught.value)


async def test_file_references_read_mounted_secrets(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("xoxb-from-file\n")
    settings = load_settings(
        slack_bot_token=f"file:{secret}", slack_signing_secret="x", mde_auth="static", mde_static_token="t"
    )
    resolved = await resolve_settings(settings)
    assert resolved.slack_bot_token is not None and resolved.slack_bot_token.get_secret_value() == "xoxb-from-file"
    missing = load_settings(
        slack_bot_token=f"file:{tmp_path}/nope", slack_signing_secret="x", mde_auth="static", mde_static_token="t"
    )
    with pytest.raises(SettingsError, match="SLACK_BOT_TOKEN"):
        await resolve_settings(missing)


def test_secret_uris_are_checked() -> None:
    assert split_secret_uri("https://v.vault.azure.net/secrets/a/b") == ("https://v.vault.azure.net", "a", "b")
    for bad in ("http://v.vault.azure.net/secrets/a", "https://v.vault.azure.net/keys/a", "https://v/secrets"):
        with pytest.raises(ValueError):
            split_secret_uri(bad)
