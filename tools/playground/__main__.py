"""``scripts/teams-playground [--check] [--out DIR]``: see ``tools.playground``."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from pathlib import Path

from tools.playground.stack import COMMAND, ROOT, Session, StackError, running


def _instructions(session: Session, out: Path) -> str:
    me = session.user("current")
    other = session.user(session.requester_id)
    speak_as = json.dumps(session.channel_message(other, COMMAND))
    return f"""Agents Playground: {session.playground_url}    (logs in {out}; Ctrl-C stops everything)
DEVELOPMENT ONLY: the bot accepts the Playground's activities without a token, on loopback only.

In the browser you are {me['name']}. Open the Incidents channel and mention the bot: @mde help
The Playground has one browser user; to speak as {other['name']}, use Mock an Activity -> Custom activity
and replace the JSON with this line, then Send activity (then approve her card as {me['name']}):
{speak_as}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/teams-playground", description=__doc__)
    parser.add_argument("--check", action="store_true", help="drive the page in headless Chromium, then stop")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "teams-playground", help="logs and screenshots")
    args = parser.parse_args(argv)
    try:
        with running(args.out) as session:
            if args.check:
                from tools.playground.check import run_check

                return run_check(session)
            print(_instructions(session, args.out), flush=True)
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            with contextlib.suppress(KeyboardInterrupt):
                stop.wait()
            return 0
    except StackError as exc:
        print(f"teams-playground: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
