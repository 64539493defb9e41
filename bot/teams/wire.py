"""Outbound activities as the Bot Framework schema defines them: ``id`` is an optional string, never null.

The Agents SDK clears ``id`` on every activity it sends (``activity.id = None`` in ``TurnContext`` and again
in ``ChannelServiceAdapter.send_activities``), and its ``send_to_conversation`` serialises without
``exclude_none`` (``reply_to_activity`` has it), so every new post carried ``"id": null``. Teams ignores that;
a connector that validates the schema answers 400: Microsoft's Agents Playground refused every card the bot
posted into a channel. Activities the bot builds are ``OutboundActivity``: the same model, with a null ``id``
left out when it is written.
"""

from __future__ import annotations

from typing import Any

from microsoft_agents.activity import Activity
from pydantic import SerializerFunctionWrapHandler, model_serializer


class OutboundActivity(Activity):
    @model_serializer(mode="wrap")
    def _without_null_id(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict) and "id" in data and data["id"] is None:
            del data["id"]
        return data
