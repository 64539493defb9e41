"""The ids Slack sends back are on the wire and in every card already posted: they never change."""

from __future__ import annotations

from bot.slack.blocks import reason_modal, request_blocks
from bot.slack.enums import ActionId, BlockId, InputId, ModalId
from tests.support.views import huge_view


def test_the_wire_values_of_posted_cards_stay_as_they_are() -> None:
    assert [a.value for a in ActionId] == ["mde_approve", "mde_reject", "mde_break_glass", "mde_show_all"]
    assert [m.value for m in ModalId] == ["mde_reject_modal", "mde_break_glass_modal"]
    assert (BlockId.REASON.value, BlockId.REQUEST.value, InputId.REASON.value) == ("reason", "mde_request", "value")


def test_a_pending_card_with_protected_devices_shows_every_button_by_its_id() -> None:
    view = huge_view(state="pending", name_suffix=".contoso.local", devices=20, exclusion_kind="protected")
    buttons = [e["action_id"] for b in request_blocks(view) if b["type"] == "actions" for e in b["elements"]]
    assert buttons == list(ActionId)


def test_the_reason_modal_is_read_back_by_its_ids() -> None:
    modal = reason_modal(7, break_glass=True)
    assert modal["callback_id"] == ModalId.BREAK_GLASS
    field = modal["blocks"][0]
    assert (field["block_id"], field["element"]["action_id"]) == (BlockId.REASON, InputId.REASON)
