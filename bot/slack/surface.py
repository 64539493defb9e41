"""Slack: ``/mde`` commands and button clicks in (via slack-bolt), cards, threads and summaries out.

``bot.slack.ingress`` decides which HTTP requests reach bolt (signature, each signature once, Slack's
retries answered without running twice); an unsigned, forged or replayed request gets 401 and reaches
nothing. This module only translates.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from approvals.identity import Origin
from approvals.service import ChatOps
from approvals.views import IncidentView, RequestView
from bot.console.render import render_summary
from bot.slack.blocks import fallback_text, incident_blocks, incident_text, reason_modal, request_blocks
from bot.slack.enums import ActionId, BlockId, InputId, ModalId
from bot.slack.identity import SlackDirectory
from bot.slack.ingress import SlackIngress, Verdict
from bot.surfaces.base import MessageRef

log = logging.getLogger(__name__)
PATH = "/slack/events"


class SlackSurface:
    name = "slack"

    def __init__(
        self,
        chatops: ChatOps,
        *,
        bot_token: str,
        signing_secret: str,
        api_url: str | None = None,
        update_interval_s: float = 1.0,
        app_token: str | None = None,
    ) -> None:
        self.chatops = chatops
        self.client = AsyncWebClient(token=bot_token, base_url=api_url or AsyncWebClient.BASE_URL)
        self.client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=3))
        self.directory = SlackDirectory(self.client)
        self.update_interval_s = update_interval_s
        self._last_update: dict[str, float] = {}
        self.app = AsyncApp(signing_secret=signing_secret or None, client=self.client)
        self.ingress = SlackIngress(chatops.db, signing_secret)
        self._register()
        #: Socket Mode (an app-level xapp- token): Slack pushes events over a websocket, no public URL needed
        self._socket: Any = None
        self._session: aiohttp.ClientSession | None = None
        if app_token:
            from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

            self._socket = AsyncSocketModeHandler(self.app, app_token)

    async def start(self) -> None:
        # one keep-alive session for every Web API call (slack_sdk opens a new one per call otherwise)
        self._session = aiohttp.ClientSession()
        self.client.session = self._session
        if self._socket is not None:
            await self._socket.connect_async()

    async def stop(self) -> None:
        if self._socket is not None:
            await self._socket.close_async()
        if self._session is not None:
            self.client.session = None
            await self._session.close()
            self._session = None

    # -- web server ----------------------------------------------------------------------------------------
    def register_routes(self, app: web.Application) -> None:
        app.router.add_post(PATH, self._handle)

    async def _handle(self, request: web.Request) -> web.Response:
        admission = await self.ingress.admit(request)
        if admission.verdict is Verdict.REFUSED:
            log.warning("Slack request refused: %s", admission.reason)
            return web.json_response({"error": "unauthorized"}, status=401)
        if admission.verdict is Verdict.ALREADY_HANDLED:
            return web.Response(status=200)
        if admission.verdict is Verdict.UNREADABLE:
            log.warning("Slack request refused: %s", admission.reason)
            return web.json_response({"error": admission.reason}, status=400)
        try:
            bolt_request = await to_bolt_request(request)
            response = await self.app.async_dispatch(bolt_request)
        except (ValueError, TypeError, AttributeError, KeyError) as exc:  # a signed body bolt cannot read
            log.warning("Slack request refused: unreadable body (%s)", type(exc).__name__)
            return web.json_response({"error": "unreadable request"}, status=400)
        if response.status >= 500:  # bolt turns a listener-matching error into a 500: it is the body's fault
            log.warning("Slack request refused: bolt could not route the body")
            return web.json_response({"error": "unreadable request"}, status=400)
        return await to_aiohttp_response(response)

    # -- inbound -------------------------------------------------------------------------------------------
    def _register(self) -> None:
        self.app.command("/mde")(self._on_command)
        self.app.action(ActionId.APPROVE)(self._on_approve)
        self.app.action(ActionId.REJECT)(self._on_reason_button)
        self.app.action(ActionId.BREAK_GLASS)(self._on_reason_button)
        self.app.action(ActionId.SHOW_ALL)(self._on_show_all)
        self.app.view(ModalId.REJECT)(self._on_reason_submit)
        self.app.view(ModalId.BREAK_GLASS)(self._on_reason_submit)

    async def _on_command(self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()  # within Slack's 3 seconds, before any work
        actor = await self.directory.actor(body["user_id"], body.get("user_name", ""))
        origin = Origin(surface="slack", channel_id=body["channel_id"], context=body.get("team_id"))
        reply = await self.chatops.handle(actor, origin, body.get("text") or "")
        text = reply.text if reply.request is None else f"{reply.text} The card is in the channel."
        await respond(text=f"```{text}```" if "\n" in text else text, response_type="ephemeral")

    async def _clicked(self, body: dict[str, Any]) -> tuple[int, str, str]:
        action = body["actions"][0]
        channel = (body.get("channel") or {}).get("id") or body.get("container", {}).get("channel_id", "")
        return int(action["value"]), body["user"]["id"], channel

    async def _refuse(self, channel: str, user: str, text: str) -> None:
        await self.client.chat_postEphemeral(channel=channel, user=user, text=text)

    async def _on_approve(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        request_id, user, channel = await self._clicked(body)
        reply = await self.chatops.decide(await self.directory.actor(user), request_id, approve=True)
        if reply.error:
            await self._refuse(channel, user, reply.text)

    async def _on_reason_button(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        request_id, _user, _channel = await self._clicked(body)
        break_glass = body["actions"][0]["action_id"] == ActionId.BREAK_GLASS
        await self.client.views_open(
            trigger_id=body["trigger_id"], view=reason_modal(request_id, break_glass=break_glass)
        )

    async def _on_reason_submit(self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        reason = (view["state"]["values"][BlockId.REASON][InputId.REASON].get("value") or "").strip()
        if not reason:
            await ack(response_action="errors", errors={BlockId.REASON: "A reason is required."})
            return
        await ack()
        request_id = int(view["private_metadata"])
        user = body["user"]["id"]
        break_glass = view["callback_id"] == ModalId.BREAK_GLASS
        reply = await self.chatops.decide(
            await self.directory.actor(user), request_id, approve=break_glass, reason=reason, break_glass=break_glass
        )
        if reply.error:
            await self.client.chat_postMessage(channel=user, text=f"Request #{request_id}: {reply.text}")

    async def _on_show_all(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        request_id, user, channel = await self._clicked(body)
        if not await self.chatops.lives_in(request_id, self.name, channel):
            await self._refuse(channel, user, "That button does not belong to a request of this channel.")
            return
        csv_text = await self.chatops.results_csv(request_id)
        thread = (body.get("message") or {}).get("ts")
        await self.client.files_upload_v2(
            channel=channel,
            thread_ts=thread,
            content=csv_text,
            filename=f"request-{request_id}-devices.csv",
            initial_comment=f"All devices of request #{request_id}, for <@{user}>.",
        )

    # -- outbound (bot.delivery calls these) ----------------------------------------------------------------
    async def post_request(
        self, channel_id: str, view: RequestView, context: str | None, thread_id: str | None = None
    ) -> MessageRef:
        response = await self.client.chat_postMessage(
            channel=channel_id, text=fallback_text(view), blocks=request_blocks(view), thread_ts=thread_id
        )
        return MessageRef(
            surface=self.name, channel_id=str(response["channel"]), message_id=str(response["ts"]), thread_id=thread_id
        )

    async def update_request(self, ref: MessageRef, view: RequestView) -> None:
        """chat.update is rate limited per channel: space edits of one card by ``update_interval_s``."""
        await self._space_edit(ref)
        await self.client.chat_update(
            channel=ref.channel_id, ts=ref.message_id, text=fallback_text(view), blocks=request_blocks(view)
        )

    async def _space_edit(self, ref: MessageRef) -> None:
        wait = self._last_update.get(ref.message_id, 0.0) + self.update_interval_s - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_update[ref.message_id] = now = time.monotonic()
        if len(self._last_update) > 1000:  # only recent edits matter for spacing: forget the rest
            self._last_update = {k: t for k, t in self._last_update.items() if now - t < 10 * self.update_interval_s}

    async def post_in_thread(self, ref: MessageRef, text: str) -> None:
        await self.client.chat_postMessage(channel=ref.channel_id, thread_ts=ref.thread_root, text=text)

    async def post_summary(self, ref: MessageRef, view: RequestView, csv_text: str) -> None:
        await self.client.chat_postMessage(channel=ref.channel_id, thread_ts=ref.thread_root, text=render_summary(view))
        await self.client.files_upload_v2(
            channel=ref.channel_id,
            thread_ts=ref.thread_root,
            content=csv_text,
            filename=f"request-{view.id}-results.csv",
            title=f"Results of request #{view.id}",
        )

    async def post_notification(self, channel_id: str, view: IncidentView, context: str | None) -> MessageRef:
        response = await self.client.chat_postMessage(
            channel=channel_id, text=incident_text(view), blocks=incident_blocks(view)
        )
        return MessageRef(surface=self.name, channel_id=str(response["channel"]), message_id=str(response["ts"]))

    async def update_notification(self, ref: MessageRef, view: IncidentView) -> None:
        await self._space_edit(ref)
        await self.client.chat_update(
            channel=ref.channel_id, ts=ref.message_id, text=incident_text(view), blocks=incident_blocks(view)
        )
