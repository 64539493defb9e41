"""The ids Slack sends back to us, in one place (like Dispatch's ``dispatch_slack/incident/enums.py``).

``blocks.py`` writes them into cards and modals, ``surface.py`` routes clicks and submissions by them: a
listener and its button cannot drift apart. The values are on the wire and stored in every message already
posted in Slack, so they never change; a new id is a new member.
"""

from __future__ import annotations

from enum import StrEnum


class ActionId(StrEnum):
    """A request card's buttons (``action_id``); bolt routes a click by it."""

    APPROVE = "mde_approve"
    REJECT = "mde_reject"
    BREAK_GLASS = "mde_break_glass"
    SHOW_ALL = "mde_show_all"


class ModalId(StrEnum):
    """A reason modal's ``callback_id``; bolt routes its submission by it."""

    REJECT = "mde_reject_modal"
    BREAK_GLASS = "mde_break_glass_modal"


class BlockId(StrEnum):
    """Block ids: the reason modal's input block (read back on submit), and the prefix of a request card's
    button row (``mde_request_<id>``)."""

    REASON = "reason"
    REQUEST = "mde_request"


class InputId(StrEnum):
    """The ``action_id`` of an input element, under its block in ``view.state.values``."""

    REASON = "value"
