"""``scripts/teams-playground --check``: drive the Agents Playground's page in headless Chromium (Debian's
``chromium`` and ``chromium-driver``, through Selenium; nothing is downloaded) and pass only if every step
was seen in the rendered page:

1. in the Incidents channel, Alice sends ``@mde isolate tag:"Finance Laptops" --reason …`` (the Playground has
   one browser user per run, Bob; another user speaks through *Mock an Activity → Custom activity*, whose
   JSON names the sender: that is how the Playground switches identity);
2. the bot's request card renders: waiting for approval, requested by Alice;
3. back as the browser's own user (Bob), a click on **Approve** on the rendered card (``Action.Execute``);
4. the card, updated in place by the bot, shows the final state (Succeeded), and the thread says who approved.

A screenshot is saved after each step (``NN-step.png``) and on failure (``failed-step.png``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tools.playground.stack import COMMAND, Session

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
CHANNEL = "Incidents"
STEP_TIMEOUT_S = 60.0
FINAL_TIMEOUT_S = 180.0  # 30 devices through the simulator at time scale 60, on a loaded 2-core machine


class StepFailed(Exception):
    """A step was not seen in the rendered page; the message says which and what was missing."""


def browser() -> WebDriver:
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never fetch a driver or a browser
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument("--window-size=1400,1800")
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


class Check:
    def __init__(self, session: Session, driver: WebDriver) -> None:
        self.session = session
        self.driver = driver
        self.shots: list[Path] = []

    # -- helpers --------------------------------------------------------------------------------------------
    def wait(self, what: str, condition: Callable[[WebDriver], Any], timeout: float = STEP_TIMEOUT_S) -> Any:
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.25).until(
                condition, message=what
            )
        except TimeoutException:
            raise StepFailed(f"not seen within {timeout:.0f} s: {what}") from None

    def shot(self, name: str, element: WebElement | None = None) -> Path:
        if element is not None:
            self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
        path = self.session.run_dir / f"{len(self.shots) + 1:02d}-{name}.png"
        self.driver.save_screenshot(str(path))
        self.shots.append(path)
        return path

    def card(self, *texts: str) -> WebElement | None:
        """The rendered Adaptive Card that shows every one of ``texts`` (the newest, when several do)."""
        condition = " and ".join(f".//*[contains(normalize-space(.), {json.dumps(t)})]" for t in texts)
        found = self.driver.find_elements(By.XPATH, f"//div[contains(@class, 'ac-adaptiveCard')][{condition}]")
        return found[-1] if found else None

    def text_seen(self, text: str) -> bool:
        body = self.driver.find_element(By.TAG_NAME, "body").text
        return text in body

    # -- steps ----------------------------------------------------------------------------------------------
    def open_channel(self) -> None:
        self.driver.get(self.session.playground_url)
        me = self.session.user("current")["name"]
        self.wait(f"the Playground signed in as {me}", lambda d: self.text_seen(me))
        channel = ec.element_to_be_clickable((By.XPATH, f"//*[text()='{CHANNEL}']"))
        self.wait(f"the {CHANNEL} channel", channel).click()
        post = ec.presence_of_element_located((By.XPATH, "//button[normalize-space()='Post']"))
        self.wait("the channel's new-post box", post)

    def send_as(self, user_id: str, text: str) -> None:
        """Mock an Activity → Custom activity: the Playground's own way to speak as another configured user."""
        user = self.session.user(user_id)
        self.driver.find_element(By.XPATH, "//*[text()='Mock an Activity']").click()
        item = "//*[@role='menuitem'][@aria-labelledby='customActivityCreateCustomActivityButtonText']"
        self.wait("the Custom activity menu item", ec.element_to_be_clickable((By.XPATH, item))).click()
        editor = self.wait(
            "the Custom activity JSON editor",
            ec.presence_of_element_located((By.CSS_SELECTOR, ".monaco-editor textarea")),
        )
        activity = self.session.channel_message(user, text)
        editor.send_keys(Keys.CONTROL, "a")
        editor.send_keys(Keys.DELETE)
        editor.send_keys(json.dumps(activity))
        editor.send_keys(Keys.HOME)  # the screenshot then shows who is speaking
        self.wait(f"the activity from {user['name']} in the editor", lambda d: user["id"] in self._editor_text())
        self.shot(f"custom-activity-as-{user['givenName'].lower()}")
        self.driver.find_element(By.XPATH, "//button[normalize-space()='Send activity']").click()

    def _editor_text(self) -> str:
        text = self.driver.execute_script(
            "const v = document.querySelector('.monaco-editor .view-lines'); return v ? v.innerText : '';"
        )
        return str(text).replace("\u00a0", " ")

    def run(self) -> None:
        requester = self.session.user(self.session.requester_id)
        approver = self.session.user("current")
        self.open_channel()
        self.shot("playground-as-" + approver["givenName"].lower())

        self.send_as(requester["id"], COMMAND)
        pending = self.wait(
            f"the request card from {requester['name']}, waiting for approval",
            lambda d: self.card("Requested by", requester["name"], "Waiting for approval"),
        )
        self.shot("card-waiting-for-approval", pending)

        self.wait(f"the browser's user is {approver['name']} again", lambda d: self.text_seen(approver["name"]))
        approve = pending.find_element(By.XPATH, ".//button[normalize-space()='Approve']")
        approve.click()
        self.wait(
            f"'Approved by {approver['name']}' in the thread",
            lambda d: self.text_seen(f"Approved by {approver['name']}"),
        )
        self.shot("approved-by-" + approver["givenName"].lower())

        final = self.wait(
            "the card in its final state: Succeeded",
            lambda d: _fresh(lambda: self.card("Requested by", requester["name"], "Succeeded")),
            timeout=FINAL_TIMEOUT_S,
        )
        self.shot("card-succeeded", final)


def _fresh(find: Callable[[], WebElement | None]) -> WebElement | None:
    try:
        return find()
    except StaleElementReferenceException:  # the card re-rendered while it was read
        return None


def run_check(session: Session) -> int:
    started = time.monotonic()
    try:
        driver = browser()
    except WebDriverException as exc:
        print(f"teams-playground --check: cannot start headless Chromium ({exc.msg}); run scripts/install-playground")
        return 1
    check = Check(session, driver)
    try:
        check.run()
    except (StepFailed, WebDriverException) as exc:
        path = session.run_dir / "failed.png"
        driver.save_screenshot(str(path))
        reason = exc.msg if isinstance(exc, WebDriverException) else str(exc)
        print(f"teams-playground --check: FAILED: {reason}; screenshot {path}; logs in {session.run_dir}")
        return 1
    finally:
        driver.quit()
    print(f"teams-playground --check: every step seen in the rendered page in {time.monotonic() - started:.0f} s")
    for path in check.shots:
        print(f"  {path}")
    return 0
