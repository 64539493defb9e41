"""A local Azure Key Vault (HTTPS, challenge-based auth) for the real ``azure-keyvault-secrets`` client.

The client first calls without a token, gets 401 with a ``WWW-Authenticate`` challenge naming the
resource, asks its credential for a token for that resource, and calls again; this server does the same
dance as the real service, on 127.0.0.1 with a throwaway self-signed certificate.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from azure.core.credentials import AccessToken
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.support.loopback import serve

TOKEN = "kv-token"


class StaticCredential:
    """An async ``TokenCredential`` with one token; records the scopes it was asked for."""

    def __init__(self) -> None:
        self.scopes: list[str] = []

    async def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.scopes.extend(scopes)
        return AccessToken(TOKEN, int(datetime.datetime.now().timestamp()) + 3600)

    async def close(self) -> None:
        return None


def _certificate(directory: Path) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@dataclass
class MockKeyVault:
    secrets: dict[str, str] = field(default_factory=dict)
    url: str = ""
    ca_file: str = ""
    unauthorized: int = 0
    _runner: web.AppRunner | None = None
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    async def start(self) -> str:
        self._tmp = tempfile.TemporaryDirectory()
        cert, key = _certificate(Path(self._tmp.name))
        self.ca_file = str(cert)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        app = web.Application()
        app.router.add_get("/secrets/{name}", self._get)
        app.router.add_get("/secrets/{name}/", self._get)  # the client asks for ".../{name}/" for the latest
        app.router.add_get("/secrets/{name}/{version}", self._get)
        self._runner, self.url = await serve(app, ssl_context=context)
        return self.url

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()
        if self._tmp:
            self._tmp.cleanup()

    async def _get(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.unauthorized += 1
            challenge = (
                'Bearer authorization="https://login.microsoftonline.com/tenant", resource="https://vault.azure.net"'
            )
            return web.json_response(
                {"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer token."}},
                status=401,
                headers={"WWW-Authenticate": challenge},
            )
        name = request.match_info["name"]
        if name not in self.secrets:
            return web.json_response(
                {"error": {"code": "SecretNotFound", "message": f"A secret with (name/id) {name} was not found."}},
                status=404,
            )
        return web.json_response(
            {"value": self.secrets[name], "id": f"{self.url}/secrets/{name}/0123456789abcdef", "attributes": {}}
        )
