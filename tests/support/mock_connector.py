"""A local Bot Connector (the Teams side of the Bot Framework) that records what the bot sends, plus the
OpenID metadata and signing keys the bot checks inbound tokens against, and a signer for those tokens.

Activities posted to the bot carry ``serviceUrl`` = this server, so the bot's replies, card updates and
roster calls come back here over real HTTP, exactly as they go to ``smba.trafficmanager.net`` in Teams.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.loopback import serve

APP_ID = "00000000-0000-0000-0000-00000000b075"
TENANT_ID = "11111111-2222-3333-4444-555555555555"
CONNECTOR_TOKEN = "connector-token"
CHANNEL = "19:soc-channel@thread.tacv2"
BOT = {"id": f"28:{APP_ID}", "name": "mde"}
#: Entra groups (Graph transitiveMemberOf) by object id; the second page of each answer holds the last group
GROUPS = {"aad-bob": ["grp-analysts", "grp-soc"], "aad-carol": ["grp-finance"], "aad-alice": []}
USERS = {
    "alice": {"id": "29:alice", "aadObjectId": "aad-alice", "name": "Alice", "upn": "alice@contoso.com"},
    "bob": {"id": "29:bob", "aadObjectId": "aad-bob", "name": "Bob", "upn": "bob@contoso.com"},
    "carol": {"id": "29:carol", "aadObjectId": "aad-carol", "name": "Carol", "upn": "carol@contoso.com"},
}

_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Sent:
    kind: str  # send | reply | update
    conversation_id: str
    activity: dict[str, Any]
    activity_id: str | None = None

    @property
    def card(self) -> dict[str, Any] | None:
        for attachment in self.activity.get("attachments") or []:
            if attachment.get("contentType") == "application/vnd.microsoft.card.adaptive":
                content: dict[str, Any] = attachment["content"]
                return content
        return None

    @property
    def text(self) -> str:
        return str(self.activity.get("text") or "")


@dataclass
class MockConnector:
    sent: list[Sent] = field(default_factory=list)
    url: str = ""
    kid: str = "test-key-1"
    #: the channels the signing key is endorsed for (Bot Framework's real keys list every channel)
    endorsements: list[str] = field(default_factory=lambda: ["msteams"])
    down: bool = False
    unauthorized_calls: int = 0
    #: answer this many of the next sends with 429 + Retry-After: 0 (Teams throttling)
    throttle_next: int = 0
    throttled: int = 0
    graph_calls: int = 0
    #: the bearer token the bot must present (the Agents Playground's connector stands in with another)
    accepted_token: str = CONNECTOR_TOKEN
    _runner: web.AppRunner | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1_700_000_000_001))

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/openid", self._openid)
        app.router.add_get("/keys", self._keys)
        app.router.add_post("/v3/conversations/{cid}/activities", self._send)
        app.router.add_post("/v3/conversations/{cid}/activities/{aid}", self._reply)
        app.router.add_put("/v3/conversations/{cid}/activities/{aid}", self._update)
        app.router.add_get("/v3/conversations/{cid}/members/{uid}", self._member)
        app.router.add_get("/v1.0/users/{oid}/transitiveMemberOf/microsoft.graph.group", self._groups)
        self._runner, self.url = await serve(app)
        return self.url

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    # -- what the bot checks inbound tokens against ---------------------------------------------------------
    @property
    def metadata_url(self) -> str:
        return f"{self.url}/openid"

    async def _openid(self, _: web.Request) -> web.Response:
        return web.json_response({"issuer": "https://api.botframework.com", "jwks_uri": f"{self.url}/keys"})

    async def _keys(self, _: web.Request) -> web.Response:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(_KEY.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "endorsements": self.endorsements})
        return web.json_response({"keys": [jwk]})

    def token(self, key: Any = None, **overrides: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": "https://api.botframework.com",
            "aud": APP_ID,
            "serviceurl": self.url,
            "nbf": now - 10,
            "exp": now + 3600,
        }
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, key or _KEY, algorithm="RS256", headers={"kid": self.kid})

    # -- activities the channel sends to the bot ------------------------------------------------------------
    def message(self, user: str, text: str, *, conversation: str = CHANNEL, mention: bool = True) -> dict[str, Any]:
        who = USERS[user]
        body = f"<at>mde</at> {text}" if mention else text
        entities = [{"type": "mention", "text": "<at>mde</at>", "mentioned": BOT}] if mention else []
        channel = conversation.startswith("19:") and "@thread.tacv2" in conversation
        return {
            "type": "message",
            "id": str(next(self._ids)),
            "channelId": "msteams",
            "serviceUrl": self.url,
            "from": {"id": who["id"], "name": who["name"], "aadObjectId": who["aadObjectId"]},
            "recipient": BOT,
            "conversation": {
                "id": f"{conversation};messageid={next(self._ids)}" if channel else conversation,
                "conversationType": "channel" if channel else "personal",
                "tenantId": TENANT_ID,
            },
            "channelData": {"tenant": {"id": TENANT_ID}},
            "text": body,
            "entities": entities,
        }

    def execute(self, user: str, verb: str, data: dict[str, Any], *, reply_to: str = "") -> dict[str, Any]:
        who = USERS[user]
        activity: dict[str, Any] = {
            "type": "invoke",
            "name": "adaptiveCard/action",
            "id": str(uuid.uuid4()),
            "channelId": "msteams",
            "serviceUrl": self.url,
            "from": {"id": who["id"], "name": who["name"], "aadObjectId": who["aadObjectId"]},
            "recipient": BOT,
            "conversation": {"id": CHANNEL, "conversationType": "channel", "tenantId": TENANT_ID},
            "channelData": {"tenant": {"id": TENANT_ID}},
            "value": {"action": {"type": "Action.Execute", "verb": verb, "data": data}, "trigger": "manual"},
        }
        if reply_to:
            activity["replyToId"] = reply_to
        return activity

    # -- what the bot sends to the channel ------------------------------------------------------------------
    def _authorized(self, request: web.Request) -> bool:
        ok = request.headers.get("Authorization") == f"Bearer {self.accepted_token}"
        if not ok:
            self.unauthorized_calls += 1
        return ok

    async def _record(self, request: web.Request, kind: str) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"error": "unauthorized"}, status=401)
        if self.down:
            return web.json_response({"error": {"code": "ServiceUnavailable"}}, status=503)
        if self.throttle_next > 0:
            self.throttle_next -= 1
            self.throttled += 1
            return web.json_response({"error": {"code": "Throttled"}}, status=429, headers={"Retry-After": "0"})
        activity = await request.json()
        cid = request.match_info["cid"]
        aid = request.match_info.get("aid")
        new_id = aid if kind == "update" else str(next(self._ids))
        self.sent.append(Sent(kind=kind, conversation_id=cid, activity=activity, activity_id=new_id))
        return web.json_response({"id": new_id})

    async def _send(self, request: web.Request) -> web.Response:
        return await self._record(request, "send")

    async def _reply(self, request: web.Request) -> web.Response:
        return await self._record(request, "reply")

    async def _update(self, request: web.Request) -> web.Response:
        return await self._record(request, "update")

    async def _member(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"error": "unauthorized"}, status=401)
        uid = request.match_info["uid"]
        for who in USERS.values():
            if who["id"] == uid:
                return web.json_response(
                    {
                        "id": who["id"],
                        "name": who["name"],
                        "aadObjectId": who["aadObjectId"],
                        "userPrincipalName": who["upn"],
                        "email": who["upn"],
                    }
                )
        return web.json_response({"error": {"code": "NotFound"}}, status=404)

    async def _groups(self, request: web.Request) -> web.Response:
        """Microsoft Graph's transitiveMemberOf, paged by @odata.nextLink like the real one."""
        if not self._authorized(request):
            return web.json_response({"error": {"code": "InvalidAuthenticationToken"}}, status=401)
        self.graph_calls += 1
        groups = GROUPS.get(request.match_info["oid"], [])
        page = int(request.query.get("page", "0"))
        chunk = groups[:-1] if page == 0 else groups[-1:]
        body: dict[str, Any] = {"value": [{"id": g} for g in chunk]}
        if page == 0 and len(groups) > 1:
            body["@odata.nextLink"] = f"{self.url}{request.path}?$select=id&page=1"
        return web.json_response(body)

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """Settings for ``mde-chatops serve`` pointed at this connector (its keys, its host, its token)."""
        values: dict[str, Any] = {
            "mde_auth": "static",
            "mde_static_token": "t",
            "teams_app_id": APP_ID,
            "teams_tenant_id": TENANT_ID,
            "teams_auth": "static",
            "teams_static_token": CONNECTOR_TOKEN,
            "teams_service_hosts": "127.0.0.1",
            "teams_openid_metadata_url": self.metadata_url if self.url else None,
        }
        values.update(overrides)
        return values

    def surface(self, chatops: Any, **options: Any) -> Any:
        """The real Teams surface wired to this connector: its keys, its token, its host, no edit spacing."""
        from bot.teams.auth import BotFrameworkAuth
        from bot.teams.connections import bot_connections
        from bot.teams.ingress import TeamsIngress
        from bot.teams.pacing import ConversationPacer
        from bot.teams.surface import TeamsSurface

        auth = BotFrameworkAuth(
            app_id=APP_ID,
            tenant_id=TENANT_ID,
            bot_framework_metadata_url=self.metadata_url,
            entra_metadata_url=self.metadata_url,
            allowed_callers=frozenset(options.pop("allowed_callers", ())),
        )
        ingress = TeamsIngress(auth, tenant_id=TENANT_ID, service_hosts=("127.0.0.1",))
        connections = bot_connections(app_id=APP_ID, tenant_id=TENANT_ID, auth="static", static_token=CONNECTOR_TOKEN)
        options.setdefault("pacer", ConversationPacer(min_edit_interval_s=0.0))
        return TeamsSurface(chatops, app_id=APP_ID, connections=connections, ingress=ingress, **options)

    async def new_request_card(self) -> tuple[int, Sent]:
        """The request card the bot posted: (its request id, what was sent)."""
        sent = await self.wait_for(lambda s: s.kind == "send" and s.card is not None)
        assert sent.card is not None
        return int(sent.card["body"][0]["text"].split()[0].lstrip("#")), sent

    async def wait_for(self, predicate: Any, timeout: float = 30.0) -> Sent:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for item in self.sent:
                if predicate(item):
                    return item
            if loop.time() > deadline:
                raise AssertionError(f"nothing matching was sent; sent: {[(s.kind, s.text[:60]) for s in self.sent]}")
            await asyncio.sleep(0.02)
