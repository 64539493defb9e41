"""Microsoft's Adaptive Cards renderer (npm ``adaptivecards``, installed in tools/cards by
scripts/ensure-card-tools) in headless Chromium from Debian, driven by Selenium: parse and validate a card
at the version Teams supports with Teams' host config, render it 500 px wide, and screenshot it."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools" / "cards"
PAGE = TOOLS / "check.html"
#: Microsoft's Teams light host config, as the Adaptive Cards designer ships it
HOST_CONFIG = TOOLS / "node_modules" / "adaptivecards-designer" / "lib" / "hostConfigs" / "microsoft-teams-light.json"
TEAMS_VERSION = "1.5"
#: Debian's chromium and chromium-driver; CHROMIUM and CHROMEDRIVER name another build (GitHub's runners)
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
SETUP_HINT = "run scripts/ensure-card-tools (Debian chromium and chromium-driver, npm ci in tools/cards)"


class CardRenderer:
    def __init__(self, driver: webdriver.Chrome) -> None:
        self.driver = driver
        self.host_config = json.loads(HOST_CONFIG.read_text(encoding="utf-8"))

    def check(self, card: dict[str, Any]) -> dict[str, Any]:
        """Parse, validate and render: ``events`` (parse and validation), ``buttons`` (title, truncated), ``text``."""
        result: dict[str, Any] = self.driver.execute_script(
            "return checkCard(arguments[0], arguments[1], arguments[2])", card, self.host_config, TEAMS_VERSION
        )
        return result

    def open(self, title: str) -> None:
        """Click a button by its title, opening the "…" menu first if the button is in it."""
        frame = self.driver.find_element(By.ID, "card")
        visible = [b for b in frame.find_elements(By.TAG_NAME, "button") if b.get_attribute("aria-label") == title]
        if not visible:
            frame.find_element(By.CSS_SELECTOR, "button[aria-label='More options']").click()
            item = self.driver.find_element(By.XPATH, f"//*[@role='menuitem'][normalize-space()='{title}']")
            item.click()
        else:
            visible[0].click()

    def visible_text(self) -> str:
        return str(self.driver.find_element(By.ID, "card").text)

    def screenshot(self, path: Path, max_height: int = 1400) -> None:
        """A PNG of the card in its Teams frame; a very long card is cut at ``max_height`` pixels."""
        box = self.driver.execute_script(
            "const r = document.getElementById('frame').getBoundingClientRect();"
            "return {x: r.x, y: r.y, width: r.width, height: r.height};"
        )
        clip = {**box, "height": min(box["height"], max_height), "scale": 1}
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "clip": clip, "captureBeyondViewport": True}
        )
        path.write_bytes(base64.b64decode(shot["data"]))


@contextmanager
def card_renderer() -> Iterator[CardRenderer]:
    missing = [str(p) for p in (Path(CHROMIUM), Path(CHROMEDRIVER), HOST_CONFIG) if not p.exists()]
    if missing:
        raise RuntimeError(f"missing {', '.join(missing)}: {SETUP_HINT}")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=560,3000", "--lang=en-US"):
        options.add_argument(argument)
    options.add_argument("--force-device-scale-factor=1")
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        driver.get(PAGE.as_uri())
        yield CardRenderer(driver)
    finally:
        driver.quit()
