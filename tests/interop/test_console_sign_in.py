"""The console's single sign-on against an identity provider it did not write: headless
Chromium opens rolegate's console, is sent to oidc-provider's login and consent pages, signs in
there, and comes back with a session; the ID token's roles decide what the console allows.

rolegate runs as a process trusting the provider by discovery only, with `token_types: [at+jwt]`
for its access tokens; the console's client is the provider's `rolegate-console`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.interop.idp import run_provider
from tests.support.browser import chromium, shown
from tests.support.process import GatewayProcess
from tests.support.storage import PEPPER

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


def console_config(issuer: str, database: Path) -> str:
    return f"""
models: [{{name: echo, provider: mock}}]
database: {{url: "sqlite+aiosqlite:///{database}", migrate_on_start: true}}
keys: {{enabled: true, pepper: "{PEPPER}"}}
auth:
  issuers:
    - name: oidc
      issuer: "{issuer}"
      discovery_url: "{issuer}/.well-known/openid-configuration"
      audiences: ["api://rolegate"]
      token_types: [at+jwt]
console:
  issuer: oidc
  client_id: rolegate-console
  client_secret: rolegate-console-secret
  authorization_url: "{issuer}/auth"
  token_url: "{issuer}/token"
policy:
  - name: console-admins
    when: {{issuers: [oidc], roles: [Console.Admin]}}
    allow: {{routes: [admin, console]}}
  - name: console-viewers
    when: {{issuers: [oidc], roles: [Console.Viewer]}}
    allow: {{routes: [console]}}
"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def signing_in(tmp_path_factory: pytest.TempPathFactory
                     ) -> AsyncIterator[tuple[str, GatewayProcess]]:
    """The provider, with the console's client, and rolegate signing in with it."""
    workdir = tmp_path_factory.mktemp("console-sign-in")
    gateway = GatewayProcess(None, workdir)  # its port, for the provider's redirect URI
    with run_provider(0, console_redirect=f"{gateway.url}/console/callback") as issuer:
        gateway.config = workdir / "rolegate.yaml"
        gateway.config.write_text(console_config(issuer, workdir / "rolegate.db"))
        async with gateway:
            yield issuer, gateway


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Any]:
    with chromium(tmp_path / "profile") as browser:
        yield browser


def sign_in_at_the_provider(driver: Any, login: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    shown(driver, By.NAME, "login").send_keys(login)
    shown(driver, By.NAME, "password").send_keys("any password")
    submit = shown(driver, By.CSS_SELECTOR, "button[type=submit]")
    submit.click()
    # The consent page has a submit button too: look for it once the login page is gone.
    WebDriverWait(driver, 10).until(expected_conditions.staleness_of(submit))
    consent = shown(driver, By.CSS_SELECTOR, "button[type=submit]")
    assert consent.text == "Continue"
    consent.click()


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("login", "can_change"), [("ops-admin", True), ("viewer", False)])
async def test_single_sign_on_through_the_provider_opens_the_console(driver, signing_in, login,
                                                                     can_change):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    issuer, gateway = signing_in
    driver.get(f"{gateway.url}/console/keys")  # no session: off to the provider
    WebDriverWait(driver, 10).until(
        lambda page: page.current_url.startswith(f"{issuer}/interaction/"))
    sign_in_at_the_provider(driver, login)

    WebDriverWait(driver, 10).until(
        expected_conditions.url_to_be(f"{gateway.url}/console"))
    main = shown(driver, By.TAG_NAME, "main").text
    assert f"Signed in as {login} (oidc)" in main
    assert ("Can change keys\nyes" in main) is can_change
    driver.get(f"{gateway.url}/console/keys")
    forms = driver.find_elements(By.CSS_SELECTOR, "form.create")
    assert bool(forms) is can_change  # the create form is for group admin only
    session = driver.get_cookie("rolegate_console")
    assert session is not None and session["httpOnly"] and session["path"] == "/console"
