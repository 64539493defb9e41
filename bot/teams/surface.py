"""Microsoft Teams on the Microsoft 365 Agents SDK: ``@mde`` commands and Action.Execute clicks in,
Adaptive Cards, thread replies and summaries out.

``POST /api/messages`` lets in only what ``bot.teams.ingress`` admits (token, Teams channel, serviceUrl,
tenant); this module translates admitted activities and never re-checks them.
Outbound, every post, edit and reply goes through ``adapter.continue_conversation`` with the stored
conversation reference, paced per conversation within Teams' limits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from microsoft_agents.activity import Activity, ActivityTypes, Attachment, ConversationReference
from microsoft_agents.activity.adaptive_card_invoke_response import AdaptiveCardInvokeResponse
from microsoft_agents.hosting.aiohttp import CloudAdapter
from microsoft_agents.hosting.core import (
    AgentApplication,
    ClaimsIdentity,
    Connections,
    MemoryStorage,
    OutboundHostValidator,
    TurnContext,
    TurnState,
)

from approvals.identity import Actor, Origin
from approvals.service import ChatOps
from approvals.views import IncidentView, RequestView
from bot.surfaces.base import MessageRef
from bot.teams import cards
from bot.teams.graph import GraphGroups
from bot.teams.identity import TeamsDirectory
from bot.teams.ingress import LOOPBACK, BadBody, CallerKind, TeamsIngress, Unauthorized, host_allowed
from bot.teams.pacing import ConversationPacer
from bot.teams.playground import playground_actor
from bot.teams.wire import OutboundActivity

log = logging.getLogger(__name__)
PATH = "/api/messages"
_THREAD = re.compile(r";messageid=\d+$")
#: Teams asks bots to back off on these (rate-limit.md: 429, and 412, 502, 504 for transient failures)
RETRY_STATUSES = frozenset({412, 429, 502, 503, 504})
RETRIES = 4


async def with_retries(call: Callable[[], Awaitable[Any]]) -> Any:
    """Run one Bot Connector operation, backing off on throttling; other errors (and the last) propagate:
    delivery then keeps the event and tries again later, in order."""
    for attempt in range(RETRIES):
        try:
            return await call()
        except aiohttp.ClientResponseError as exc:
            if exc.status not in RETRY_STATUSES:
                raise
            await asyncio.sleep(_backoff(exc, attempt))
    return await call()


def _backoff(exc: aiohttp.ClientResponseError, attempt: int) -> float:
    """Retry-After when Teams gives one, else exponential with full jitter (1 s, 2 s, 4 s, … at most 30 s)."""
    header = exc.headers.get("Retry-After") if exc.headers else None
    if header:
        try:
            return min(60.0, max(0.0, float(header)))
        except ValueError:
            pass
    return random.uniform(0, min(30.0, 2.0**attempt))


def base_conversation_id(conversation_id: str) -> str:
    """A channel thread's id is ``<channel>;messageid=<root>``; the channel itself is the part before."""
    return _THREAD.sub("", conversation_id)


def in_thread(channel_id: str, root: str | None) -> str:
    """The conversation id of a channel thread (replies into it), or the conversation itself."""
    return f"{channel_id};messageid={root}" if root else channel_id


class TeamsSurface:
    name = "teams"

    def __init__(
        self,
        chatops: ChatOps,
        *,
        app_id: str,
        connections: Connections,
        ingress: TeamsIngress,
        pacer: ConversationPacer | None = None,
        graph_url: str | None = None,
    ) -> None:
        self.chatops = chatops
        self.app_id = app_id
        self.ingress = ingress
        self.service_hosts = ingress.service_hosts
        self.pacer = pacer or ConversationPacer()
        groups = None
        if graph_url:  # entra-group: principals, read with the bot's own token (GroupMember.Read.All)
            provider = connections.get_default_connection()
            scope = f"{graph_url.rstrip('/')}/.default"

            async def graph_token() -> str:
                return await provider.get_access_token(graph_url, [scope])

            groups = GraphGroups(graph_token, base_url=graph_url)
        self.directory = TeamsDirectory(groups=groups)
        loopback_only = all(h in LOOPBACK for h in self.service_hosts)
        # the SDK's own SSRF guard refuses loopback, so it is on for every real deployment, off for a local connector
        validator = None if loopback_only else OutboundHostValidator(list(self.service_hosts), enabled=True)
        self.adapter = CloudAdapter(connection_manager=connections, host_validator=validator)
        self.adapter.on_turn_error = self._on_turn_error
        self.app: AgentApplication[TurnState] = AgentApplication[TurnState](
            storage=MemoryStorage(),
            connection_manager=connections,
            start_typing_timer=False,
            remove_recipient_mention=True,
        )
        self._register()

    async def start(self) -> None:
        """Nothing to open: the Agents SDK makes (and closes) the connector client of each turn."""

    async def stop(self) -> None:
        """Nothing to close (see ``start``)."""

    # -- web server ----------------------------------------------------------------------------------------
    def register_routes(self, app: web.Application) -> None:
        app.router.add_post(PATH, self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            admitted = await self.ingress.admit(request)
        except Unauthorized as exc:
            log.warning("Teams request refused: %s", exc)
            return web.json_response({"error": "unauthorized"}, status=401)
        except BadBody as exc:
            return web.json_response({"error": str(exc)}, status=400)
        caller = admitted.caller
        request["claims_identity"] = ClaimsIdentity(caller.claims, authentication_type=caller.kind.value)
        try:
            response = await self.adapter.process(request, self.app)
        except ValueError as exc:  # an activity the SDK cannot model
            log.warning("Teams activity rejected: %s", type(exc).__name__)
            return web.json_response({"error": "malformed activity"}, status=400)
        return response or web.Response(status=202)

    async def _on_turn_error(self, context: TurnContext, error: Exception) -> None:
        log.error("Teams turn failed: %s: %s", type(error).__name__, error, exc_info=error)
        await context.send_activity("Something went wrong on our side; the error is logged. Please try again.")

    # -- inbound -------------------------------------------------------------------------------------------
    def _register(self) -> None:
        self.app.message(None)(self._on_message)
        self.app.conversation_update("membersAdded")(self._on_installed)
        for verb in (cards.VERB_APPROVE, cards.VERB_REJECT, cards.VERB_BREAK_GLASS):
            self.app.adaptive_card.action_execute(verb)(self._on_decision)
            self.app.adaptive_card.action_submit(verb)(self._on_submit_fallback)
        self.app.adaptive_card.action_execute(cards.VERB_SHOW_ALL)(self._on_show_all)
        self.app.adaptive_card.action_execute(cards.VERB_REFRESH)(self._on_refresh)

    @staticmethod
    def origin_of(activity: Activity) -> Origin:
        """Where a card for this conversation goes: the channel (a new post), or the chat itself."""
        reference = activity.get_conversation_reference()
        assert reference.conversation is not None
        reference.conversation.id = base_conversation_id(reference.conversation.id)
        reference.activity_id = None
        context = reference.model_dump_json(by_alias=True, exclude_none=True)
        return Origin(surface="teams", channel_id=reference.conversation.id, context=context)

    async def _on_installed(self, context: TurnContext, _state: TurnState) -> None:
        await self.chatops.remember_conversation(self.origin_of(context.activity))
        added = context.activity.members_added or []
        if any(m.id == (context.activity.recipient.id if context.activity.recipient else None) for m in added):
            await context.send_activity("mde-chatops is here. Mention me with `help` to see the commands.")

    async def _actor(self, context: TurnContext) -> Actor:
        """The person a Teams channel token vouches for; an allow-listed app speaks as itself, never as a person."""
        identity = context.identity
        if identity is not None and identity.authentication_type == CallerKind.PLAYGROUND:
            return playground_actor(context.activity.from_property)
        if identity is not None and identity.authentication_type == CallerKind.APP:
            app_id = str(identity.claims.get("azp") or identity.claims.get("appid") or "")
            return Actor(platform="app", user_id=app_id, display_name=f"app {app_id}")
        return await self.directory.actor(context)

    async def _on_message(self, context: TurnContext, _state: TurnState) -> None:
        text = (context.activity.text or "").strip()
        if not text and context.activity.value is not None:
            return  # an Action.Submit without a known verb
        actor = await self._actor(context)
        origin = self.origin_of(context.activity)
        await self.chatops.remember_conversation(origin)
        reply = await self.chatops.handle(actor, origin, text)
        message = reply.text if reply.request is None else f"{reply.text} The card is posted in this conversation."
        if "\n" in message:
            message = f"```\n{message}\n```"
        reply_activity = OutboundActivity(type=ActivityTypes.message, text=message, text_format="markdown")
        await with_retries(lambda: context.send_activity(reply_activity))

    async def _decide(self, context: TurnContext, data: dict[str, Any]) -> tuple[int | None, str | None]:
        """Apply a click; return (request id, refusal text or None)."""
        try:
            request_id = int(data.get("request_id"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None, "This card is not a request card."
        verb = str(data.get("verb") or "")
        reason = str(data.get(cards.REASON_INPUTS.get(verb, "")) or "").strip()
        if verb in (cards.VERB_REJECT, cards.VERB_BREAK_GLASS) and not reason:
            return request_id, "A reason is required."
        actor = await self._actor(context)
        if actor.platform == "app":
            return request_id, "An app cannot approve or reject; a person decides, in Teams."
        break_glass = verb == cards.VERB_BREAK_GLASS
        reply = await self.chatops.decide(
            actor,
            request_id,
            approve=verb != cards.VERB_REJECT,
            reason=reason or None,
            break_glass=break_glass,
        )
        return request_id, reply.text if reply.error else None

    async def _on_decision(self, context: TurnContext, _state: TurnState, data: Any) -> AdaptiveCardInvokeResponse:
        payload = dict(data or {})
        value: Any = context.activity.value or {}
        payload.setdefault("verb", (value.get("action") or {}).get("verb"))
        request_id, refusal = await self._decide(context, payload)
        if refusal is not None or request_id is None:
            # shown to the clicker only; the card stays as it was for everyone
            return message_response(refusal or "Not a request card.")
        view = await self.chatops.view(request_id)
        return card_response(cards.request_card(view, refresh_users=_clicker(context)))

    async def _on_submit_fallback(self, context: TurnContext, _state: TurnState, data: Any) -> None:
        _request_id, refusal = await self._decide(context, dict(data or {}))
        if refusal:
            await with_retries(lambda: context.send_activity(refusal))

    async def _view_here(self, context: TurnContext, data: Any) -> RequestView | None:
        """The request a card action names, if its card belongs to this conversation."""
        try:
            request_id = int((data or {})["request_id"])
        except (TypeError, ValueError, KeyError):
            return None
        conversation = context.activity.conversation
        here = base_conversation_id(conversation.id) if conversation is not None else ""
        if not await self.chatops.lives_in(request_id, self.name, here):
            return None
        return await self.chatops.view(request_id)

    async def _on_show_all(self, context: TurnContext, _state: TurnState, data: Any) -> AdaptiveCardInvokeResponse:
        view = await self._view_here(context, data)
        if view is None:
            return message_response("This card is not a request card of this conversation.")
        devices = await self.chatops.device_rows(view.id, limit=cards.ALL_DEVICES_ROWS)
        await self._reply_card(context, cards.all_devices_card(view, devices))
        return message_response(f"All {view.device_count} devices are posted in the thread.")

    async def _on_refresh(self, context: TurnContext, _state: TurnState, data: Any) -> AdaptiveCardInvokeResponse:
        view = await self._view_here(context, data)
        if view is None:
            return message_response("This card is not a request card of this conversation.")
        return card_response(cards.request_card(view, refresh_users=_clicker(context)))

    async def _reply_card(self, context: TurnContext, card: cards.Card) -> None:
        activity = OutboundActivity(
            type=ActivityTypes.message,
            attachments=[Attachment(content_type=cards.CARD_CONTENT_TYPE, content=card)],
        )
        await with_retries(lambda: context.send_activity(activity))

    # -- outbound (bot.delivery calls these) ----------------------------------------------------------------
    async def _continue(self, reference_json: str | None, conversation_id: str, logic: Any) -> Any:
        if not reference_json:
            raise LookupError(f"no Teams conversation reference for {conversation_id}")
        reference = ConversationReference.model_validate_json(reference_json)
        if not host_allowed(reference.service_url or "", self.service_hosts):
            raise PermissionError("the stored serviceUrl is not an allowed Teams host")
        assert reference.conversation is not None
        reference.conversation.id = conversation_id
        result: dict[str, Any] = {}

        async def callback(context: TurnContext) -> None:
            result["value"] = await logic(context)

        continuation = reference.get_continuation_activity()
        continuation.id = None  # otherwise every post becomes a reply to this synthetic activity
        await with_retries(lambda: self.adapter.continue_conversation(self.app_id, continuation, callback))
        return result.get("value")

    async def _send_card(self, conversation_id: str, context: str | None, card: cards.Card, summary: str) -> str:
        async def send(turn: TurnContext) -> str:
            attachment = Attachment(content_type=cards.CARD_CONTENT_TYPE, content=card)
            activity = OutboundActivity(type=ActivityTypes.message, summary=summary, attachments=[attachment])
            response = await turn.send_activity(activity)
            return str(response.id)

        return str(await self._continue(context, conversation_id, send))

    async def post_request(
        self, channel_id: str, view: RequestView, context: str | None, thread_id: str | None = None
    ) -> MessageRef:
        await self.pacer.send(channel_id)
        card, summary = cards.request_card(view, _requester(view, context)), cards.fallback_text(view)
        message_id = await self._send_card(in_thread(channel_id, thread_id), context, card, summary)
        return MessageRef(
            surface=self.name, channel_id=channel_id, message_id=message_id, context=context, thread_id=thread_id
        )

    async def _update_card(self, ref: MessageRef, card: cards.Card, summary: str) -> None:
        await self.pacer.edit(ref.channel_id, ref.message_id)

        async def update(turn: TurnContext) -> None:
            attachment = Attachment(content_type=cards.CARD_CONTENT_TYPE, content=card)
            activity = OutboundActivity(
                type=ActivityTypes.message, id=ref.message_id, summary=summary, attachments=[attachment]
            )
            await turn.update_activity(activity)

        await self._continue(ref.context, in_thread(ref.channel_id, ref.thread_id), update)

    async def update_request(self, ref: MessageRef, view: RequestView) -> None:
        await self._update_card(ref, cards.request_card(view, _requester(view, ref.context)), cards.fallback_text(view))

    @staticmethod
    def _thread_id(ref: MessageRef) -> str:
        """Replies go into the thread in a channel; a personal or group chat has no threads."""
        try:
            conversation = json.loads(ref.context or "{}").get("conversation") or {}
        except json.JSONDecodeError:
            conversation = {}
        return in_thread(ref.channel_id, ref.thread_root if conversation.get("conversationType") == "channel" else None)

    async def post_in_thread(self, ref: MessageRef, text: str) -> None:
        await self.pacer.send(ref.channel_id)

        async def send(turn: TurnContext) -> None:
            await turn.send_activity(OutboundActivity(type=ActivityTypes.message, text=text, text_format="plain"))

        await self._continue(ref.context, self._thread_id(ref), send)

    async def post_summary(self, ref: MessageRef, view: RequestView, csv_text: str) -> None:
        await self.pacer.send(ref.channel_id)
        await self._send_card(self._thread_id(ref), ref.context, cards.summary_card(view), f"Summary of #{view.id}")

    async def post_notification(self, channel_id: str, view: IncidentView, context: str | None) -> MessageRef:
        await self.pacer.send(channel_id)
        message_id = await self._send_card(channel_id, context, cards.incident_card(view), view.headline())
        return MessageRef(surface=self.name, channel_id=channel_id, message_id=message_id, context=context)

    async def update_notification(self, ref: MessageRef, view: IncidentView) -> None:
        await self._update_card(ref, cards.incident_card(view), view.headline())


def _clicker(context: TurnContext) -> tuple[str, ...]:
    """The card an invoke returns is the clicker's copy: it refreshes automatically for them."""
    sender = context.activity.from_property
    return (sender.id,) if sender is not None and sender.id else ()


def _requester(view: RequestView, reference_json: str | None) -> tuple[str, ...]:
    """The channel's copy refreshes automatically for the requester, whose Teams user id is in the
    conversation reference their command was stored with (an incident's request has none)."""
    try:
        user = json.loads(reference_json or "{}").get("user")
    except (json.JSONDecodeError, AttributeError):
        return ()
    if not isinstance(user, dict):
        return ()
    user_id = str(user.get("id") or "")
    key = f"teams:{user.get('aadObjectId') or user_id}"
    return (user_id,) if user_id and key == view.requester_key else ()


def card_response(card: cards.Card) -> AdaptiveCardInvokeResponse:
    return AdaptiveCardInvokeResponse(status_code=200, type=cards.CARD_CONTENT_TYPE, value=card)


def message_response(text: str) -> AdaptiveCardInvokeResponse:
    return AdaptiveCardInvokeResponse(status_code=200, type="application/vnd.microsoft.activity.message", value=text)
