"""The console in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`,
driven by Selenium) signs in through the development issuer's authorize page against rolegate
running as a process, creates a key in the Keys page, and the key works on the API until it is
revoked in the page.

A second test walks every page at a laptop's and a phone's size and saves screenshots: into a
temporary directory, or, with `CONSOLE_SCREENSHOTS=1`, into `docs/console/` (the README shows
them). To refresh them:

    CONSOLE_SCREENSHOTS=1 ./dev pytest tests/e2e/test_console_browser.py -k screenshots

Skipped when Chromium or its driver is missing, unless `REQUIRE_BROWSER=1` (set by `.ci/run`).
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rolegate.accounting.records import UsageRecord
from rolegate.accounting.store import UsageStore
from rolegate.authn.dev_issuer import DevIssuer
from tests.support.browser import chromium, shown
from tests.support.process import GatewayProcess
from tests.support.storage import PEPPER

pytestmark = pytest.mark.e2e


def config(database: Path) -> str:
    return f"""
models: [{{name: echo, provider: mock}}, {{name: gpt-4o, provider: mock}},
         {{name: gpt-4o-mini, provider: mock}}]
auth: {{dev_issuer: {{enabled: true}}}}
database: {{url: "sqlite+aiosqlite:///{database}", migrate_on_start: true}}
keys: {{enabled: true, pepper: "{PEPPER}", cache_ttl: 0}}
policy:
  - {{name: users, when: {{roles: [rolegate.user]}},
     allow: {{routes: [inference, info], models: ["*"]}}}}
  - {{name: analysts, when: {{roles: [analyst]}},
     allow: {{routes: [inference, info], models: [gpt-4o-mini]}}}}
  - {{name: admins, when: {{roles: [rolegate.admin]}}, allow: {{routes: [admin, console]}}}}
accounting: {{flush_interval: 0.05}}
"""


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Any]:
    with chromium(tmp_path / "profile") as browser:
        yield browser


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


DOCS = Path(__file__).resolve().parents[2] / "docs" / "console"
LAPTOP, PHONE = (1280, 860), (390, 844)
# page -> its path, and the element scrolled to the top of the window (None: the page's top)
PAGES = {"overview": ("?window=day", "activity"), "policy": ("/policy", "matched"),
         "keys": ("/keys", None), "usage": ("/usage?by=model&since=1d", None),
         "decisions": ("/decisions", None)}
MAX_PNG = 150 * 1024


async def a_day_of_usage(database: Path) -> None:
    """Usage records over the last day, as three models' traffic would leave them."""
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(f"sqlite+aiosqlite:///{database}")
    rng = random.Random(7)
    now = time.time()
    records = []
    for index in range(900):
        model, base = rng.choice([("gpt-4o", 900.0), ("gpt-4o-mini", 350.0), ("echo", 20.0)])
        at = now - rng.random() ** 0.7 * 86000
        who = rng.choice(["alice", "bob", "svc-reports", "carol"])
        tokens = rng.randint(50, 1500)
        records.append(UsageRecord(
            ts=at, request_id=f"r{index}", issuer="corp", subject=who, client_id=who,
            key_id=None, end_user=None, rule="users", model=model, provider="mock",
            deployment=f"{model}-0", operation="chat/completions", is_stream=False,
            prompt_tokens=tokens // 3, completion_tokens=tokens - tokens // 3,
            total_tokens=tokens, cost_usd=tokens * 2e-6,
            status=502 if rng.random() < 0.03 else 200,
            latency_ms=base * (0.5 + rng.random()) * (3 if rng.random() < 0.05 else 1)))
    await UsageStore(engine).insert_many(records)
    await engine.dispose()


async def some_traffic(gateway: GatewayProcess, state: Path) -> None:
    """Requests granted and refused, so the Policy and Decisions pages have something to say."""
    issuer = DevIssuer.load(state)
    chat = {"messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(base_url=gateway.url) as api:
        for subject, roles, model in (("alice", ("rolegate.user",), "gpt-4o"),
                                      ("bob", ("rolegate.user",), "echo"),
                                      ("dana", ("analyst",), "gpt-4o-mini"),
                                      ("dana", ("analyst",), "gpt-4o")):
            bearer = {"Authorization": f"Bearer {issuer.mint(subject=subject, roles=roles)}"}
            await api.post("/v1/chat/completions", json={**chat, "model": model},
                           headers=bearer)
        await api.get("/v1/models", headers={"Authorization": "Bearer not-a-token"})
        await api.get("/admin/keys", headers={
            "Authorization": f"Bearer {issuer.mint(subject='eve', roles=('analyst',))}"})


def save(driver: Any, folder: Path, name: str, size: tuple[int, int],
         anchor: str | None = None) -> Path:
    driver.set_window_size(*size)
    if anchor is not None:
        driver.execute_script("document.getElementById(arguments[0]).scrollIntoView()", anchor)
    path = folder / f"{name}.png"
    assert driver.save_screenshot(str(path))
    return path


@pytest.mark.timeout(180)
async def test_screenshots_of_every_page_at_laptop_and_phone_size(driver, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    folder = DOCS if os.environ.get("CONSOLE_SCREENSHOTS") == "1" else tmp_path / "shots"
    folder.mkdir(parents=True, exist_ok=True)
    database = tmp_path / "rolegate.db"
    async with GatewayProcess(config(database), tmp_path) as gateway:
        await a_day_of_usage(database)
        await some_traffic(gateway, tmp_path / "state")
        driver.set_window_size(*LAPTOP)
        driver.get(f"{gateway.url}/console")
        shown(driver, By.ID, "sign-in").click()
        WebDriverWait(driver, 10).until(expected_conditions.url_to_be(f"{gateway.url}/console"))
        driver.get(f"{gateway.url}/console/keys")
        shown(driver, By.ID, "name").send_keys("reports-service")
        shown(driver, By.ID, "owner").send_keys("team-reports")
        shown(driver, By.ID, "roles").send_keys("rolegate.user")
        shown(driver, By.CSS_SELECTOR, "form.create button[type=submit]").click()
        copy = shown(driver, By.CSS_SELECTOR, "button.copy")
        assert copy.is_displayed()  # the script ran and showed the button
        copy.click()
        WebDriverWait(driver, 5).until(
            lambda page: page.find_element(By.ID, "copy-status").text != "")
        saved = [save(driver, folder, "keys-created", LAPTOP)]
        driver.get(f"{gateway.url}/console/explain")
        shown(driver, By.ID, "claims").send_keys(json.dumps(
            {"iss": f"{gateway.url}/dev", "sub": "dana", "roles": ["analyst"]}))
        shown(driver, By.ID, "model").send_keys("gpt-4o")
        shown(driver, By.CSS_SELECTOR, "form.create button[type=submit]").click()
        shown(driver, By.ID, "verdict")
        saved.append(save(driver, folder, "explain", LAPTOP, "verdict"))
        for name, (path, anchor) in PAGES.items():
            driver.get(f"{gateway.url}/console{path}")
            shown(driver, By.TAG_NAME, "main")
            saved.append(save(driver, folder, name, LAPTOP, anchor))
        driver.get(f"{gateway.url}/console?window=day")
        shown(driver, By.TAG_NAME, "main")
        saved.append(save(driver, folder, "overview-phone", PHONE, "activity"))

    for path in saved:
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) < MAX_PNG, (path, len(data))
