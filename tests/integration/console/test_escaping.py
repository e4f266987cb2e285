"""Names and claims in the console's pages and charts are text, never markup: a key's name and
owner, a principal's subject, a claim's value and a model asked for reach the HTML and the SVG
escaped, in attributes as in text."""

from __future__ import annotations

import re

from tests.integration.console.conftest import Browser
from tests.integration.console.test_key_edit import new_key
from tests.support.markup import parse_page

PAYLOAD = '<script>alert(1)</script><svg onload=alert(2)>"onload="alert(3)'
ESCAPED = ("&lt;script&gt;alert(1)&lt;/script&gt;&lt;svg onload=alert(2)&gt;"
           "&#34;onload=&#34;alert(3)")


def assert_inert(page: str) -> None:
    """No script element, no event-handler attribute, and the payload there as text."""
    elements = parse_page(page)
    assert [e.attrs.get("src") for e in elements if e.tag == "script"] == [
        "/console/console.js"]
    assert not [(e.tag, name) for e in elements for name in e.attrs if name.startswith("on")]
    assert "<script>alert" not in page and "<svg onload" not in page
    assert ESCAPED in page


async def test_a_key_named_as_markup_is_text_in_every_page_showing_it(browser: Browser):
    csrf = await browser.sign_in()
    _, key_id = await new_key(browser, csrf)
    created = await browser.client.post("/console/keys", data={
        "csrf": csrf, "name": PAYLOAD, "owner": PAYLOAD, "roles": "rolegate.user"})
    marked = re.findall(r'href="/console/keys/([^"/]+)"', created.text)
    assert key_id in marked

    for page in (created.text, (await browser.client.get("/console/keys")).text,
                 *[(await browser.client.get(f"/console/keys/{found}")).text
                   for found in marked if found != key_id]):
        assert_inert(page)


async def test_claims_and_models_as_markup_are_text_in_policy_decisions_and_charts(
        browser: Browser, dev_issuer):
    csrf = await browser.sign_in()
    user = {"Authorization": "Bearer " + dev_issuer.mint(subject=PAYLOAD,
                                                         roles=("rolegate.user",))}
    await browser.client.get("/v1/models", headers=user)  # granted by rule users
    plaintext, key_id = await new_key(browser, csrf)
    await browser.client.post(f"/console/keys/{key_id}", data={"csrf": csrf,
                                                                "models": "other-*"})
    refused = await browser.client.post("/v1/chat/completions", headers={
        "Authorization": f"Bearer {plaintext}"}, json={"model": PAYLOAD, "messages": []})
    assert refused.status_code == 403  # a denial naming the model asked for

    policy = (await browser.client.get("/console/policy")).text
    decisions = (await browser.client.get("/console/decisions")).text
    overview = (await browser.client.get("/console", params={"window": "hour"})).text

    for page in (policy, decisions, overview):
        assert_inert(page)
    denials = overview[overview.index('id="denials-caption"'):]
    assert f"</svg> {ESCAPED}</li>" in denials  # the legend
    assert f"<title>{ESCAPED}</title>" in denials  # the line's own title, in the SVG
    assert f'<th scope="col">{ESCAPED}</th>' in denials  # the data table
