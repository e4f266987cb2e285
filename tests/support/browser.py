"""Headless Chromium for the console's browser tests (Debian's `chromium` and
`chromium-driver`, driven by Selenium): `chromium(profile)` starts one, `shown` finds an element
once its page has loaded.

Missing Chromium or its driver skips the test, unless `REQUIRE_BROWSER=1` (set by `.ci/run`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
# Flags that let Chromium run headless in a container, offline and quietly: every host name
# but loopback's fails to resolve, so a page cannot fetch anything from elsewhere.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
         "--window-size=1280,900")


@contextmanager
def chromium(profile: Path) -> Iterator[Any]:
    if CHROMIUM is None or DRIVER is None:
        message = "chromium and chromium-driver are not installed (apt-get install them)"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
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
