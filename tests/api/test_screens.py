"""The screens in a real headless Chromium (Debian's `chromium` and `chromium-driver`, driven by
Selenium; nothing downloaded): a supervisor approves, starts and pauses a campaign and changes
its abandon target on the dashboard."""

from __future__ import annotations

import os
import time
import shutil
from collections.abc import Iterator

import dialer_core
import httpx
import pytest

from api.auth import create_token
from tests.support.api_server import ApiServer

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    os.environ["SE_OFFLINE"] = "true"  # Selenium must not try to download a browser or a driver
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=DRIVER))
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: WebDriver, what: str, check, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: check(d), message=what)


def state_of(driver: WebDriver, cid: str) -> str:
    cells = driver.find_elements(By.CSS_SELECTOR, f'tr[data-id="{cid}"] td.state')
    return cells[0].text if cells else ""


def figure(driver: WebDriver, name: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, f'[data-figure="{name}"] b').text)


def retype(field: WebElement, text: str) -> None:
    """Replace a field's text as a user does, in one command that keeps the focus: WebDriver's
    clear() blurs the field, and the page's 2-second refresh may fill it in again before the
    next keys arrive ("0.02" + "0.9" = "0.020.9": no number, so no refusal to show)."""
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(text)


def test_supervisor_runs_a_campaign_and_tunes_pacing(server: ApiServer, admin: httpx.Client, redis_url: str,
                                                     seed_spec: dict[str, object], browser: WebDriver) -> None:
    cid = admin.post("/v1/campaigns", json={**seed_spec, "name": "Dashboard test"}).json()["id"]
    token, _ = create_token(redis_url, "supervisor", "screens", None)  # someone else created it: may approve
    browser.get(server.base_url + "/supervisor")
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.ID, "save").click()
    wait(browser, "the campaign listed", lambda d: state_of(d, cid) == "pending_approval")
    for action, state in (("approve", "approved"), ("start", "running"), ("pause", "paused")):
        browser.find_element(By.CSS_SELECTOR, f'tr[data-id="{cid}"] button[data-action="{action}"]').click()
        wait(browser, f"{action} -> {state}", lambda d, s=state: state_of(d, cid) == s)
        assert admin.get(f"/v1/campaigns/{cid}").json()["state"] == state
    # Resume is offered now; start is not.
    assert not browser.find_element(By.CSS_SELECTOR, f'tr[data-id="{cid}"] button[data-action="start"]').is_enabled()
    assert browser.find_element(By.CSS_SELECTOR, f'tr[data-id="{cid}"] button[data-action="resume"]').is_enabled()

    browser.find_element(By.CSS_SELECTOR, f'tr[data-id="{cid}"] td').click()
    wait(browser, "the live panel", lambda d: d.find_element(By.ID, "detail").is_displayed())
    wait(browser, "the figures", lambda d: figure(d, "abandon rate / target").endswith("3.00 %"))
    retype(browser.find_element(By.NAME, "target_abandon_rate"), "0.02")
    browser.find_element(By.CSS_SELECTOR, "#pacing button[type=submit]").click()
    wait(browser, "pacing applied", lambda d: admin.get(f"/v1/campaigns/{cid}/pacing").json()["settings"]["target_abandon_rate"] == 0.02)
    wait(browser, "the new target shown", lambda d: figure(d, "abandon rate / target").endswith("2.00 %"))
    # A refused change is explained, and changes nothing.
    retype(browser.find_element(By.NAME, "target_abandon_rate"), "0.9")
    browser.find_element(By.CSS_SELECTOR, "#pacing button[type=submit]").click()
    wait(browser, "the refusal shown", lambda d: "target_abandon_rate" in d.find_element(By.ID, "message").text)
    assert admin.get(f"/v1/campaigns/{cid}/pacing").json()["settings"]["target_abandon_rate"] == 0.02


@pytest.mark.parametrize("size", [(1280, 800), (390, 844)])
def test_the_dashboard_fits_the_screen(server: ApiServer, redis_url: str, browser: WebDriver, size: tuple[int, int]) -> None:
    token, _ = create_token(redis_url, "admin", "screens", None)
    browser.set_window_size(*size)
    browser.get(server.base_url + "/supervisor")
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.ID, "save").click()
    wait(browser, "signed in", lambda d: d.find_element(By.ID, "status").text.startswith("updated"))
    overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{overflow} px wider than a {size[0]} px screen"


def test_an_agent_takes_a_customer_fills_the_survey_and_sets_a_callback(
        server: ApiServer, admin: httpx.Client, redis_url: str, browser: WebDriver) -> None:
    from tests.api.test_agents import agent, running_manual

    running_manual(admin, numbers=2, cid="scr")
    agent(admin, "alice")
    token, _ = create_token(redis_url, "agent", "Alice", "alice")
    browser.get(server.base_url + "/agent")
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.ID, "signin").click()
    wait(browser, "signed in and live", lambda d: d.find_element(By.ID, "status").text == "live")
    join = wait(browser, "the campaign offered", lambda d: d.find_elements(By.CSS_SELECTOR, 'li[data-id="scr"] button[data-action="join"]'))
    join[0].click()
    wait(browser, "joined", lambda d: d.find_elements(By.CSS_SELECTOR, 'li[data-id="scr"] button[data-action="leave"]'))
    wait(browser, "next offered", lambda d: d.find_element(By.ID, "next").is_enabled())
    browser.find_element(By.ID, "next").click()
    number = wait(browser, "the customer shown", lambda d: d.find_element(By.ID, "number").text)
    assert number.startswith("+84") and "Customer" in browser.find_element(By.ID, "attrs").text
    call_id = admin.get("/v1/agents/alice").json()["call"]
    assert call_id
    # Manual: nothing is dialled until the agent presses Call.
    assert "press Call" in browser.find_element(By.ID, "dialstate").text
    browser.find_element(By.ID, "dialnow").click()
    wait(browser, "the call queued for the dialer", lambda d: "placed in 0 s" in d.find_element(By.ID, "dialstate").text)
    view = admin.get(f"/v1/calls/{call_id}").json()  # no dialer runs here: due, not yet taken
    assert view["dial"] == "waiting" and view["dial_at"] is not None
    # The survey as a form; a callback in an hour.
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(By.NAME, "q_satisfied")).select_by_visible_text("yes")
    outcome = browser.find_element(By.NAME, "outcome")
    outcome.clear()
    outcome.send_keys("call_later")
    browser.execute_script("""
        const d = new Date(Date.now() + 3600e3), p = (n) => String(n).padStart(2, "0");
        document.querySelector('[name=callback_at]').value =
            `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
        // The network drops as the disposition leaves: the screen keeps it and sends it again.
        const real = window.fetch; let dropped = false;
        window.fetch = (url, opts) => {
            if (!dropped && String(url).includes("/disposition")) { dropped = true; return Promise.reject(new TypeError("network down")); }
            return real(url, opts);
        };
    """)
    browser.find_element(By.CSS_SELECTOR, "#disposition button[type=submit]").click()
    wait(browser, "the drop noticed", lambda d: "kept and will be sent again" in d.find_element(By.ID, "message").text)
    wait(browser, "sent again", lambda d: d.find_element(By.ID, "status").text == "disposition saved", timeout=15)
    wait(browser, "no customer on screen", lambda d: d.find_element(By.ID, "idle").is_displayed())
    c = dialer_core.CallQueue(redis_url, "scr").contact(number) or {}
    assert c["state"] == "callback" and c["agent"] == "alice" and c["last_outcome"] == "call_later"
    assert abs(c["time"] - (time.time() + 3600)) < 120
    assert admin.get("/v1/agents/alice").json()["call"] is None


@pytest.mark.parametrize("size", [(1280, 800), (390, 844)])
def test_the_agent_screen_fits_the_screen(server: ApiServer, admin: httpx.Client, redis_url: str, browser: WebDriver,
                                          size: tuple[int, int]) -> None:
    from tests.api.test_agents import agent

    agent(admin, f"fit{size[0]}")
    token, _ = create_token(redis_url, "agent", "fit", f"fit{size[0]}")
    browser.set_window_size(*size)
    browser.get(server.base_url + "/agent")
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.ID, "signin").click()
    wait(browser, "signed in", lambda d: d.find_element(By.ID, "status").text == "live")
    overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{overflow} px wider than a {size[0]} px screen"
