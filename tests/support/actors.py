"""Console identities and a console origin shared by engine tests (test data, not fixtures)."""

from __future__ import annotations

from approvals.identity import Actor, Origin
from bot.console.repl import console_actor

ALICE: Actor = console_actor("alice")
BOB: Actor = console_actor("bob")
CAROL: Actor = console_actor("carol")
DAVE: Actor = console_actor("dave")
HERE = Origin(surface="console", channel_id="console")
