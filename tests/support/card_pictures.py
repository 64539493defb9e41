"""docs/cards.md and its pictures, from the card fixtures: ``scripts/card-pictures`` runs this.

Each Teams card is rendered by Microsoft's renderer (tests/support/card_renderer.py) to
docs/images/cards/<name>.png, palette-compressed by pngquant when it is installed; each Slack message links
to Slack's Block Kit Builder with its payload in the link. tests/bot/test_docs_cards.py checks that the page
matches the fixtures.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

from tests.support.card_fixtures import Fixture, fixtures, slack_messages, slack_modals
from tests.support.card_renderer import ROOT, card_renderer

PAGE = ROOT / "docs" / "cards.md"
IMAGES = ROOT / "docs" / "images" / "cards"
BUILDER = "https://app.slack.com/block-kit-builder/#"
#: payloads too long for a link (a 5,000-device card is tens of kilobytes)
NOT_LINKED = {"request-5000-devices"}

INTRO = """# What people see: the cards, step by step

Every picture here is a card the bot sends, built by `tests/support/card_fixtures.py` and rendered by
Microsoft's Adaptive Cards renderer (npm `adaptivecards`, Teams light host config, 500 px wide, schema 1.5)
in headless Chromium: the same check `tests/bot/teams/test_rendered_cards.py` runs on every card, which
fails on any parse error, validation warning, cut button title or markdown left on screen. It is Microsoft's
renderer, not the Teams client: fonts and spacing differ a little. Regenerate the page and the pictures with
`scripts/card-pictures` (after changing a card; `tests/bot/test_docs_cards.py` fails until you do).

Refusals are not cards: when someone may not decide (their own request, not an approver, no reason given),
Teams shows the bot's one-sentence answer to the person who clicked only, and the card stays as it was.
"""

STEPS: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    (
        "The requester",
        'Alice types `@mde isolate tag:"Finance Laptops" device:soc-jump-01 device:hv-host-01 '
        '--reason "INC-1042: …" --type selective` in a channel. The bot answers in her thread and posts the '
        "request card in the channel, where it is updated in place until the end.",
        (
            (
                "request-pending",
                "Her request, waiting for approval: the devices it resolved to, and why others are excluded.",
            ),
            (
                "request-executing",
                "Approved: progress counts only the devices the card lists. The click is answered at once; until a "
                "worker has created the jobs (a moment, a few seconds at 100,000 devices) the progress line "
                'reads "preparing the jobs of N device(s), 0 of N submitted". On PostgreSQL the riskiest 2,000 '
                "devices' jobs are written first and start while the rest are prepared.",
            ),
            ("request-partially-failed", "Finished."),
            ("summary-partially-failed", "The summary in the card's thread."),
            ("request-rejected", "Or rejected: who and why."),
            ("request-expired", "Or nobody approved it in time."),
            ("request-cancelled", "Or cancelled while it ran."),
        ),
    ),
    (
        "The approver",
        'Bob sees the same card. **Approve** and **Reject** are in sight; the "…" menu holds **Break glass** '
        "(only when a protected device was excluded) and **Show all devices**.",
        (
            ("request-reject-reason", "Reject asks why; the reason is required and kept in the audit log."),
            ("request-break-glass", "Break glass asks why protected devices must be included."),
            ("all-devices-cjk", "Show all devices posts every device in the thread, as many as fit in one message."),
        ),
    ),
    (
        "The war room",
        "An incident webhook (Sentinel or Defender XDR) posts a notification in the channel its rule names; "
        "requests for the incident, and their summaries, go into its thread.",
        (
            ("incident-open", "The notification."),
            ("summary-5000-partially-failed", "A large request's summary: whole rows, then the rest counted."),
            ("incident-closed", "The notification when the incident is closed."),
        ),
    ),
)


def markdown() -> str:
    by_name = {f.name: f for f in fixtures()}
    lines = [INTRO]
    for title, text, pictures in STEPS:
        lines += [f"## {title}", "", text, ""]
        for step, (name, words) in enumerate(pictures, start=1):
            lines += [f"{step}. {words}", "", f"   ![{by_name[name].caption}](images/cards/{name}.png)", ""]
    lines += [
        "## The same cards in Slack",
        "",
        "Slack draws Block Kit itself: each link opens the payload in Slack's Block Kit Builder (a Slack sign-in",
        "is needed). `tests/bot/slack/test_block_kit_limits.py` checks every payload against Slack's documented",
        "limits.",
        "",
    ]
    for name, blocks in slack_messages().items():
        if name not in NOT_LINKED:
            lines.append(f"- [{name}]({BUILDER}{_quoted({'blocks': blocks})})")
    for name, modal in slack_modals().items():
        lines.append(f"- [{name} (modal)]({BUILDER}{_quoted(modal)})")
    return "\n".join(lines) + "\n"


def _quoted(payload: object) -> str:
    return quote(json.dumps(payload, separators=(",", ":"), ensure_ascii=False), safe="")


def render_pictures(items: list[Fixture]) -> list[Path]:
    IMAGES.mkdir(parents=True, exist_ok=True)
    written = []
    with card_renderer() as renderer:
        for fixture in items:
            renderer.check(fixture.card)
            if fixture.open_button:
                renderer.open(fixture.open_button)
            path = IMAGES / f"{fixture.name}.png"
            renderer.screenshot(path)
            written.append(path)
    pngquant = shutil.which("pngquant")
    if pngquant:
        for path in written:
            subprocess.run(
                [pngquant, "--force", "--skip-if-larger", "--quality", "60-90", "--strip", "--ext", ".png", str(path)],
                check=False,
            )
    else:
        print("pngquant is not installed: the pictures are left uncompressed (apt-get install pngquant)")
    return written


def main() -> int:
    PAGE.write_text(markdown(), encoding="utf-8")
    paths = render_pictures(fixtures())
    total = sum(p.stat().st_size for p in paths)
    print(
        f"wrote {PAGE.relative_to(ROOT)} and {len(paths)} pictures ({total // 1024} KB) in {IMAGES.relative_to(ROOT)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
