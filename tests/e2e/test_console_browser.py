"""The console in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`,
driven by Selenium) signs in through the development issuer's authorize page against rolegate
running as a process, creates a key in the Keys page, and the key works on the API until it is
revoked in the page.

Skipped when Chromium or its driver is missing, unless `REQUIRE_BROWSER=1` (set by `.ci/run`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.process import GatewayProcess
from tests.support.storage import PEPPER

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
# Flags that let Chromium run headless in a container, offline and quietly.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,900")


def config(database: Path) -> str:
    return f"""
models: [{{name: echo, provider: mock}}]
auth: {{dev_issuer: {{enabled: true}}}}
database: {{url: "sqlite+aiosqlite:///{database}", migrate_on_start: true}}
keys: {{enabled: true, pepper: "{PEPPER}", cache_ttl: 0}}
policy:
  - {{name: users, when: {{roles: [rolegate.user]}},
     allow: {{routes: [inference, info], models: ["*"]}}}}
  - {{name: admins, when: {{roles: [rolegate.admin]}}, allow: {{routes: [admin, console]}}}}
"""


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Any]:
    if CHROMIUM is None or DRIVER is None:
        message = "chromium and chromium-driver are not installed (apt-get install them)"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(DRIVER), options=options)
    browser.set_page_load_timeout(20)
    try:
        yield browser
    finally:
        browser.quit()


def shown(driver: Any, by: str, value: str) -> Any:
    """The element once the page that has it has loaded: a click that navigates returns
    before the next document is there, and an element of the old one is gone with it."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.support.wait import WebDriverWait

    def ready(page: Any) -> Any:
        if page.execute_script("return document.readyState") != "complete":
            return False
        element = page.find_element(by, value)
        element.is_displayed()  # raises on an element of a document that was replaced
        return element
    return WebDriverWait(driver, 10, ignored_exceptions=(
        StaleElementReferenceException, WebDriverException)).until(ready)


@pytest.mark.timeout(120)
async def test_an_admin_signs_in_and_creates_and_revokes_a_key_in_the_browser(driver, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    async with GatewayProcess(config(tmp_path / "rolegate.db"), tmp_path) as gateway:
        driver.get(f"{gateway.url}/console/keys")  # no session: sign in first
        assert "Development sign-in" in driver.title
        driver.find_element(By.ID, "subject").clear()
        driver.find_element(By.ID, "subject").send_keys("browser-admin")
        driver.find_element(By.ID, "sign-in").click()

        WebDriverWait(driver, 10).until(expected_conditions.url_to_be(f"{gateway.url}/console"))
        assert "browser-admin" in shown(driver, By.TAG_NAME, "main").text
        driver.find_element(By.LINK_TEXT, "Keys").click()
        WebDriverWait(driver, 10).until(
            expected_conditions.url_to_be(f"{gateway.url}/console/keys"))
        shown(driver, By.ID, "name").send_keys("made-in-chromium")
        shown(driver, By.ID, "owner").send_keys("team-browser")
        shown(driver, By.ID, "roles").send_keys("rolegate.user")
        shown(driver, By.CSS_SELECTOR, "form.create button[type=submit]").click()

        key = WebDriverWait(driver, 10).until(
            lambda page: page.find_element(By.ID, "new-key")).get_attribute("value")
        assert key is not None and key.startswith("rg-")
        bearer = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=gateway.url) as api:
            assert (await api.get("/v1/models", headers=bearer)).status_code == 200
            revoke = driver.find_element(By.CSS_SELECTOR,
                                         "button[aria-label='Revoke key made-in-chromium']")
            revoke.click()
            WebDriverWait(driver, 10).until(expected_conditions.staleness_of(revoke))
            assert driver.current_url == f"{gateway.url}/console/keys"
            assert "revoked" in shown(driver, By.TAG_NAME, "table").text
            assert (await api.get("/v1/models", headers=bearer)).status_code == 401
