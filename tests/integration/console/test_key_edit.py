"""Editing a key's models and limits in the console: a CSRF-checked form for route group
`admin` only, validated as the admin API's PATCH, and in force on the key's next request."""

from __future__ import annotations

import re

from tests.integration.console.conftest import Browser
from tests.integration.console.test_pages import NEW_KEY, create

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


async def new_key(browser: Browser, csrf: str) -> tuple[str, str]:
    """A key made in the console: its plaintext and its id."""
    page = await create(browser, csrf)
    plaintext = NEW_KEY.search(page.text)
    key_id = re.search(r'href="/console/keys/([^"/]+)"', page.text)
    assert plaintext is not None and key_id is not None
    return plaintext.group(1), key_id.group(1)


async def test_an_admin_limits_a_key_to_a_model_and_sets_its_limits(browser: Browser):
    csrf = await browser.sign_in()
    plaintext, key_id = await new_key(browser, csrf)
    bearer = {"Authorization": f"Bearer {plaintext}"}
    assert (await browser.client.post("/v1/chat/completions", json={**CHAT, "model": "echo"},
                                      headers=bearer)).status_code == 200

    saved = await browser.client.post(f"/console/keys/{key_id}", data={
        "csrf": csrf, "models": "other-*", "rpm": "5", "monthly_budget_usd": "2.5",
        "per_end_user": "on"})

    assert (saved.status_code, saved.headers["location"]) == (303, f"/console/keys/{key_id}")
    page = (await browser.client.get(f"/console/keys/{key_id}")).text
    assert 'id="models" name="models" value="other-*"' in page
    assert 'id="rpm" name="rpm" inputmode="numeric" value="5"' in page
    assert 'value="2.5"' in page and 'name="per_end_user" checked' in page
    refused = await browser.client.post("/v1/chat/completions",
                                        json={**CHAT, "model": "echo"}, headers=bearer)
    assert refused.status_code == 403  # the key is now limited to other-*


async def test_emptied_fields_clear_the_models_and_limits(browser: Browser):
    csrf = await browser.sign_in()
    _, key_id = await new_key(browser, csrf)
    await browser.client.post(f"/console/keys/{key_id}", data={
        "csrf": csrf, "models": "x", "tpm": "100"})

    await browser.client.post(f"/console/keys/{key_id}", data={"csrf": csrf, "models": "",
                                                                "tpm": ""})

    keys = (await browser.client.get("/console/keys")).text
    assert "as policy allows" in keys
    assert 'name="tpm" inputmode="numeric" value=""' in (
        await browser.client.get(f"/console/keys/{key_id}")).text


async def test_bad_limits_are_refused_with_400_naming_the_field(browser: Browser):
    csrf = await browser.sign_in()
    _, key_id = await new_key(browser, csrf)

    words = await browser.client.post(f"/console/keys/{key_id}", data={"csrf": csrf,
                                                                       "rpm": "many"})
    negative = await browser.client.post(f"/console/keys/{key_id}", data={"csrf": csrf,
                                                                          "rpm": "-1"})
    unknown = await browser.client.post("/console/keys/nope", data={"csrf": csrf, "rpm": "1"})

    assert (words.status_code, words.json()["error"]["param"]) == (400, "rpm")
    assert negative.status_code == 400 and "rpm" in negative.json()["error"]["message"]
    assert unknown.status_code == 404


async def test_a_viewer_sees_the_limits_read_only_and_cannot_post_them(open_browser):
    browser = await open_browser()
    admin_csrf = await browser.sign_in()
    _, key_id = await new_key(browser, admin_csrf)
    viewer = await open_browser()
    csrf = await viewer.sign_in(roles="viewer")

    page = await viewer.client.get(f"/console/keys/{key_id}")
    posted = await viewer.client.post(f"/console/keys/{key_id}", data={"csrf": csrf,
                                                                       "rpm": "1"})
    without_csrf = await browser.client.post(f"/console/keys/{key_id}", data={"rpm": "1"})

    assert page.status_code == 200 and "<fieldset disabled>" in page.text
    assert "Save changes" not in page.text
    assert posted.status_code == 403
    assert posted.json()["error"]["code"] == "insufficient_scope"
    assert without_csrf.status_code == 403
    assert without_csrf.json()["error"]["code"] == "csrf_failed"
    assert 'value=""' in (await browser.client.get(f"/console/keys/{key_id}")).text.split(
        'id="rpm"')[1][:60]


async def test_the_new_key_comes_with_a_copy_button_and_a_status_for_it(browser: Browser):
    csrf = await browser.sign_in()

    page = await create(browser, csrf)

    assert re.search(r'<button type="button" class="copy" data-copy="new-key" '
                     r'data-status="copy-status" hidden>Copy key</button>', page.text)
    assert '<p id="copy-status" role="status" aria-live="polite">' in page.text
