"""The screens' own defences: they cannot be framed by another site (clickjacking), run no script
but their own (Content-Security-Policy with the inline script's hash), and keep the token in the
tab only (sessionStorage) with a sign-out.

Before: /supervisor could be put in an invisible frame and a signed-in supervisor's clicks turned
into "start" or "approve"; there was no CSP; the admin token stayed in localStorage for good,
readable by any script of the origin, with no way to sign out."""

from __future__ import annotations

import base64
import hashlib
import re

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from api.auth import create_token
from tests.api.test_screens import browser, wait  # noqa: F401 (fixture)
from tests.support.api_server import ApiServer


@pytest.mark.parametrize("page", ["/supervisor", "/agent"])
def test_the_screens_refuse_to_be_framed_and_run_only_their_own_script(admin: httpx.Client, page: str) -> None:
    r = httpx.get(str(admin.base_url) + page)
    assert r.status_code == 200
    assert r.headers["x-frame-options"] == "DENY"
    csp = dict(d.strip().split(" ", 1) for d in r.headers["content-security-policy"].split(";"))
    assert csp["frame-ancestors"] == "'none'" and csp["default-src"] == "'none'" and csp["connect-src"] == "'self'"
    (script,) = re.findall(r"<script>(.*?)</script>", r.text, flags=re.S)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert csp["script-src"] == f"'sha256-{digest}'"  # no 'unsafe-inline': an injected script does not run
    assert r.headers["cache-control"] == "no-store"


def test_the_supervisor_token_stays_in_the_tab_and_signs_out(server: ApiServer, redis_url: str, browser: WebDriver) -> None:  # noqa: F811
    token, _ = create_token(redis_url, "admin", "screens", None)
    browser.get(server.base_url + "/supervisor")
    # The page's own script runs under its CSP (it signs in), an injected one does not.
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.ID, "save").click()
    wait(browser, "signed in", lambda d: d.find_element(By.ID, "status").text.startswith("updated"))
    ran = browser.execute_script("""
        window.injected = false;
        const s = document.createElement('script'); s.textContent = 'window.injected = true'; document.body.append(s);
        return window.injected;""")
    assert ran is False
    assert browser.execute_script("return sessionStorage.getItem('dialer.token')") == token
    assert browser.execute_script("return localStorage.getItem('dialer.token')") is None
    browser.find_element(By.ID, "signout").click()
    wait(browser, "signed out", lambda d: d.find_element(By.ID, "status").text == "signed out")
    assert browser.execute_script("return sessionStorage.getItem('dialer.token')") is None
    assert browser.find_element(By.ID, "token").get_attribute("value") == ""
    browser.refresh()
    assert browser.find_element(By.ID, "token").get_attribute("value") == ""


def test_the_agent_token_stays_in_the_tab_and_signs_out(server: ApiServer, admin: httpx.Client, redis_url: str,
                                                        browser: WebDriver) -> None:  # noqa: F811
    from tests.api.test_agents import agent

    agent(admin, "zoe")
    token, _ = create_token(redis_url, "agent", "Zoe", "zoe")
    browser.get(server.base_url + "/agent")
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.ID, "signin").click()
    wait(browser, "signed in and live", lambda d: d.find_element(By.ID, "status").text == "live")
    assert browser.execute_script("return sessionStorage.getItem('dialer.agent.token')") == token
    assert browser.execute_script("return localStorage.getItem('dialer.agent.token')") is None
    browser.find_element(By.ID, "signout").click()
    wait(browser, "signed out", lambda d: d.find_element(By.ID, "status").text == "signed out")
    assert browser.execute_script("return sessionStorage.getItem('dialer.agent.token')") is None
