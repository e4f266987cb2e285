"""The console's sign-in: OIDC code flow with PKCE through the development issuer, the session
cookie's flags and expiry, and every tampered step refused."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qsl, urlsplit

import httpx

from tests.integration.console.conftest import Browser, local
from tests.support.clock import FakeClock


def set_cookies(response: httpx.Response) -> dict[str, str]:
    return {value.split("=", 1)[0]: value for value in response.headers.get_list("set-cookie")}


async def test_dev_sign_in_opens_the_console_with_a_strict_session_cookie(browser):
    _, back = await browser.authorize()
    done = await browser.client.get(local(back.headers["location"]))

    assert (done.status_code, done.headers["location"]) == (303, "/console")
    session = set_cookies(done)["rolegate_console"]
    assert "; HttpOnly" in session and "; SameSite=Lax" in session and "; Path=/console" in session
    assert "Secure" not in session  # plain HTTP on loopback: development
    assert "Max-Age=0" in set_cookies(done)["rolegate_sign_in"]
    home = await browser.client.get("/console")
    assert home.status_code == 200
    assert "Signed in as <strong>ops</strong>" in home.text


async def test_cookies_are_secure_when_served_beyond_loopback(open_browser):
    browser = await open_browser(server={"public_base_url": "https://gw.example"})
    start = await browser.client.get("/console/login")

    assert start.headers["location"].startswith("https://gw.example/dev/authorize?")
    assert "; Secure" in set_cookies(start)["rolegate_sign_in"]


async def test_a_console_page_without_a_session_sends_the_browser_to_sign_in(browser):
    response = await browser.client.get("/console/keys")

    assert (response.status_code, response.headers["location"]) == (303, "/console/login")


async def test_a_callback_with_another_state_is_refused(browser):
    _, back = await browser.authorize()
    query = dict(parse_qsl(urlsplit(back.headers["location"]).query))

    response = await browser.client.get("/console/callback",
                                        params={**query, "state": "forged"})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_state"
    assert "rolegate_console" not in set_cookies(response)


async def test_a_code_issued_for_another_pkce_challenge_is_refused(browser, gateway_for,
                                                                   console_settings):
    """An attacker's code (their own sign-in, their challenge) injected into the victim's
    callback, with the victim's state: the victim's verifier does not match."""
    victim_params = dict(parse_qsl(urlsplit(
        (await browser.client.get("/console/login")).headers["location"]).query))
    attacker = Browser(await gateway_for(console_settings()))
    _, back = await attacker.authorize()
    attacker_code = dict(parse_qsl(urlsplit(back.headers["location"]).query))["code"]

    response = await browser.client.get("/console/callback", params={
        "code": attacker_code, "state": victim_params["state"]})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_grant"


async def test_a_code_issued_with_another_challenge_for_this_browser_is_refused(browser):
    _, back = await browser.authorize(code_challenge="A" * 43)

    response = await browser.client.get(local(back.headers["location"]))

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_grant"


async def test_an_id_token_with_another_nonce_is_refused(browser):
    _, back = await browser.authorize(nonce="replayed-nonce")

    response = await browser.client.get(local(back.headers["location"]))

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_nonce"


async def test_a_code_is_good_once(browser):
    _, back = await browser.authorize()
    callback = local(back.headers["location"])
    assert (await browser.client.get(callback)).status_code == 303
    again = await browser.client.get("/console/login")  # a new sign-in cookie, same old code
    state = dict(parse_qsl(urlsplit(again.headers["location"]).query))["state"]
    code = dict(parse_qsl(urlsplit(callback).query))["code"]

    response = await browser.client.get("/console/callback", params={"code": code,
                                                                     "state": state})

    assert response.json()["error"]["code"] == "invalid_grant"


async def test_a_callback_without_a_sign_in_under_way_is_refused(browser):
    response = await browser.client.get("/console/callback", params={"code": "x", "state": "y"})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "sign_in_expired"


async def test_the_authorize_page_accepts_only_the_console_callback(browser):
    start = await browser.client.get("/console/login")
    params = dict(parse_qsl(urlsplit(start.headers["location"]).query))

    response = await browser.client.get("/dev/authorize", params={
        **params, "redirect_uri": "https://evil.example/steal"})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_client"


async def test_after_sign_in_the_browser_goes_home_whatever_the_request_asked(browser):
    """No redirect target is read from the request: `next` is ignored (no open redirect)."""
    start = await browser.client.get("/console/login",
                                     params={"next": "https://evil.example/"})
    params = dict(parse_qsl(urlsplit(start.headers["location"]).query))
    back = await browser.client.post("/dev/authorize", data={
        **{name: params[name] for name in ("client_id", "redirect_uri", "state", "nonce",
                                           "code_challenge")},
        "subject": "ops", "roles": "rolegate.admin"})

    done = await browser.client.get(local(back.headers["location"]))

    assert done.headers["location"] == "/console"


async def test_an_idle_session_expires(browser, clock: FakeClock):
    await browser.sign_in()
    clock.advance(1799)
    assert (await browser.client.get("/console")).status_code == 200  # renews the idle timer
    clock.advance(1799)
    assert (await browser.client.get("/console")).status_code == 200
    clock.advance(1800)

    response = await browser.client.get("/console")

    assert (response.status_code, response.headers["location"]) == (303, "/console/login")


async def test_a_session_in_use_still_ends_at_its_absolute_expiry(browser, clock: FakeClock):
    await browser.sign_in()
    for _ in range(16):  # 16 x 1700 s = 27,200 s, inside the 8-hour limit
        clock.advance(1700)
        assert (await browser.client.get("/console")).status_code == 200
    clock.advance(1700)

    response = await browser.client.get("/console")

    assert response.status_code == 303


async def test_a_session_cookie_edited_to_add_a_role_is_not_a_session(browser):
    await browser.sign_in(roles="viewer")
    value = browser.client.cookies["rolegate_console"]
    payload, _, mac = value.partition(".")
    session = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    session["roles"] = ["rolegate.admin", "viewer"]
    forged = base64.urlsafe_b64encode(json.dumps(session).encode()).rstrip(b"=").decode()
    browser.client.cookies.clear()
    genuine = await browser.client.get("/console", headers={"Cookie": f"rolegate_console={value}"})
    assert genuine.status_code == 200

    response = await browser.client.get("/console",
                                        headers={"Cookie": f"rolegate_console={forged}.{mac}"})

    assert response.status_code == 303


async def test_sign_out_ends_the_session(browser):
    csrf = await browser.sign_in()

    out = await browser.client.post("/console/logout", data={"csrf": csrf})

    assert out.status_code == 200
    assert "Max-Age=0" in set_cookies(out)["rolegate_console"]
    assert (await browser.client.get("/console")).status_code == 303


async def test_without_the_development_issuer_there_is_no_sign_in(open_browser, dev_issuer):
    browser = await open_browser(auth={"dev_issuer": {"enabled": False}})

    assert (await browser.client.get("/console/login")).status_code == 401
    assert (await browser.client.get("/dev/authorize")).status_code == 401


async def test_a_console_turned_off_answers_404_even_to_an_admin(open_browser, dev_issuer):
    browser = await open_browser(console={"enabled": False})
    admin = {"Authorization": f"Bearer {dev_issuer.mint(roles=('rolegate.admin',))}"}

    assert (await browser.client.get("/console/login")).status_code == 401
    response = await browser.client.get("/console/keys", headers=admin)
    assert (response.status_code, response.json()["error"]["code"]) == (404, "unknown_route")


async def test_the_console_signs_in_and_serves_at_its_configured_path(open_browser):
    browser = await open_browser(console={"path": "/ops/console"})

    csrf = await browser.sign_in()

    keys = await browser.client.get("/ops/console/keys")
    old = await browser.client.get("/console/keys")
    assert keys.status_code == 200 and csrf in keys.text
    assert 'href="/ops/console/console.css"' in keys.text
    assert 'action="/ops/console/keys"' in keys.text
    cookie = next(value for name, value in keys.headers.multi_items() if name == "set-cookie")
    assert "Path=/ops/console;" in cookie
    assert old.status_code == 401  # not the console any more: a path needing a credential
    assert (await browser.client.get("/ops/console/console.js")).status_code == 200
