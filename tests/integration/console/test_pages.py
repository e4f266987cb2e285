"""The console's pages: keys created and revoked through forms (CSRF-checked, admin only),
names shown as text, framing forbidden, and the explain page's report."""

from __future__ import annotations

import re

from tests.integration.console.conftest import Browser, local

NEW_KEY = re.compile(r'id="new-key" class="secret" type="text" readonly value="([^"]+)"')


async def create(browser: Browser, csrf: str, **fields: str):
    return await browser.client.post("/console/keys", data={
        "csrf": csrf, "name": "ci", "owner": "team-a", "roles": "rolegate.user", **fields})


async def test_a_key_created_in_the_console_works_until_revoked_there(browser):
    csrf = await browser.sign_in()

    page = await create(browser, csrf)

    assert page.status_code == 200
    key = NEW_KEY.search(page.text)
    assert key is not None
    bearer = {"Authorization": f"Bearer {key.group(1)}"}
    assert (await browser.client.get("/v1/models", headers=bearer)).status_code == 200
    listing = await browser.client.get("/console/keys")
    assert key.group(1) not in listing.text  # shown once, in the page that created it
    key_id = re.search(r"/console/keys/([^/]+)/revoke", listing.text)
    assert key_id is not None

    revoked = await browser.client.post(f"/console/keys/{key_id.group(1)}/revoke",
                                        data={"csrf": csrf})

    assert (revoked.status_code, revoked.headers["location"]) == (303, "/console/keys")
    refused = await browser.client.get("/v1/models", headers=bearer)
    assert refused.status_code == 401
    assert "revoked" in (await browser.client.get("/console/keys")).text


async def test_a_form_without_the_session_csrf_token_is_refused(browser):
    csrf = await browser.sign_in()

    missing = await browser.client.post("/console/keys", data={"name": "x", "owner": "y"})
    wrong = await create(browser, csrf[:-2] + "xx")

    for response in (missing, wrong):
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "csrf_failed"
    assert "<td>ci</td>" not in (await browser.client.get("/console/keys")).text


async def test_sign_out_needs_the_csrf_token_too(browser):
    await browser.sign_in()

    response = await browser.client.post("/console/logout", data={})

    assert response.status_code == 403
    assert (await browser.client.get("/console")).status_code == 200


async def test_a_viewer_sees_no_create_form_and_cannot_post_one(browser):
    csrf = await browser.sign_in(roles="viewer")
    page = await browser.client.get("/console/keys")

    response = await create(browser, csrf)

    assert page.status_code == 200 and "Create a key" not in page.text
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"


async def test_a_caller_without_route_group_console_cannot_open_it(browser):
    _, back = await browser.authorize(roles="rolegate.user")
    assert (await browser.client.get(local(back.headers["location"]))).status_code == 303

    response = await browser.client.get("/console")

    assert response.status_code == 403


async def test_names_are_shown_as_text_and_pages_cannot_be_framed(browser):
    csrf = await browser.sign_in()

    page = await create(browser, csrf, name="<script>alert(1)</script>")

    assert "<script>alert(1)" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy
    assert re.findall(r"<script[^>]*>", page.text) == [
        '<script src="/console/console.js" defer>']  # our own file, nothing inline


CONSOLE_REQUESTS = [  # (method, path, form): pages, refusals and downloads alike
    ("GET", "/console", None), ("GET", "/console/nope", None), ("DELETE", "/console/keys", None),
    ("POST", "/console/keys", {"name": "x"}), ("POST", "/console/logout", {}),
    ("GET", "/console/keys/no-such-key", None), ("GET", "/console/usage?since=garbage", None),
    ("GET", "/console/usage.csv", None), ("POST", "/console/explain", {}),
    ("GET", "/console/login", None), ("GET", "/console/callback?state=x&code=y", None),
]


async def test_every_console_response_forbids_framing_and_sniffing(open_browser, dev_issuer):
    """Refusals too: a 404 or 403 under the console's path is as framable as a page."""
    viewer, admin, anonymous = [await open_browser() for _ in range(3)]
    csrf = {id(viewer): await viewer.sign_in(roles="viewer"), id(admin): await admin.sign_in()}
    bearer = {"authorization": f"Bearer {dev_issuer.mint(subject='u', roles=('rolegate.user',))}"}
    seen = []
    for browser, headers in ((viewer, {}), (admin, {}), (anonymous, {}), (anonymous, bearer)):
        for method, path, form in CONSOLE_REQUESTS:
            data = None if form is None else {**form, "csrf": csrf.get(id(browser), "")}
            response = await browser.client.request(method, path, data=data, headers=headers)
            seen.append(response.status_code)
            assert response.headers.get("x-frame-options") == "DENY", (method, path)
            assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
            assert response.headers["x-content-type-options"] == "nosniff"
    assert {200, 303, 400, 403, 404, 405} <= set(seen)


async def test_explain_shows_the_decision_the_gateway_takes(browser, dev_issuer):
    csrf = await browser.sign_in()
    token = dev_issuer.mint(roles=("rolegate.user",))

    allowed = await browser.client.post("/console/explain", data={
        "csrf": csrf, "credential": token, "route": "/v1/chat/completions", "model": "echo"})
    refused = await browser.client.post("/console/explain", data={
        "csrf": csrf, "credential": token, "route": "/admin/keys"})

    assert "Allowed (200)" in allowed.text and "<td>users</td><td>yes</td>" in allowed.text
    assert "Refused (403)" in refused.text
    assert token not in allowed.text  # the credential is not shown back


async def test_the_stylesheet_and_script_are_served_without_a_session(browser):
    style = await browser.client.get("/console/console.css")
    script = await browser.client.get("/console/console.js")

    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "navigator.clipboard" in script.text and "select()" in script.text


async def test_decisions_lists_recent_refusals_with_their_reasons(browser, dev_issuer):
    csrf = await browser.sign_in()
    token = dev_issuer.mint(subject="<b>mallory</b>", roles=("rolegate.user",))
    user = {"Authorization": f"Bearer {token}"}
    await browser.client.get("/admin/keys", headers=user)  # 403: not granted admin
    await browser.client.get("/v1/models", headers={"Authorization": "Bearer nonsense"})  # 401
    await create(browser, csrf[:-2] + "xx")  # 403: CSRF, refused before any decision

    page = await browser.client.get("/console/decisions")
    only_401 = await browser.client.get("/console/decisions", params={"code": "invalid_token"})

    assert page.status_code == 200
    assert "&lt;b&gt;mallory&lt;/b&gt;" in page.text and "insufficient_scope" in page.text
    assert "route group &#39;admin&#39;" in page.text  # the reason, as text
    assert "<code>/v1/models</code>" in page.text
    assert "mallory" not in only_401.text and "<code>/v1/models</code>" in only_401.text


async def test_usage_shows_totals_and_downloads_them_as_csv(browser, dev_issuer):
    await browser.sign_in()
    token = dev_issuer.mint(subject="=cmd", roles=("rolegate.user",))
    caller = {"Authorization": f"Bearer {token}"}
    chat = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
    for _ in range(2):
        assert (await browser.client.post("/v1/chat/completions", json=chat,
                                          headers=caller)).status_code == 200

    page = await browser.until_shown("/console/usage", "<td>echo</td><td>2</td>", by="model")
    download = await browser.client.get("/console/usage.csv", params={"by": "principal"})

    assert page.status_code == 200 and "<td>echo</td><td>2</td>" in page.text
    assert download.headers["content-type"].startswith("text/csv")
    assert 'filename="usage-by-principal.csv"' in download.headers["content-disposition"]
    lines = download.text.splitlines()
    assert lines[0].startswith("issuer,subject,requests")
    assert "'=cmd" in lines[1]  # never a formula in a spreadsheet


async def test_policy_shows_issuers_models_and_rules_as_tables(browser):
    await browser.sign_in(roles="viewer")

    page = await browser.client.get("/console/policy")

    assert page.status_code == 200
    assert "<td>dev</td>" in page.text and "<td>echo</td>" in page.text
    assert "<td>viewers</td>" in page.text and "roles: viewer" in page.text
    assert "<td>admin, console</td>" in page.text


async def test_usage_groups_and_charts_by_a_configured_dimension(open_browser, dev_issuer):
    browser = await open_browser(accounting={"flush_interval": 0.05,
                                             "dimensions": ["department"]})
    await browser.sign_in()
    chat = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
    for department in ("sales", "sales", '<script>x</script>"onload="'):
        token = dev_issuer.mint(roles=("rolegate.user",), extra={"department": department})
        assert (await browser.client.post("/v1/chat/completions", json=chat, headers={
            "Authorization": f"Bearer {token}"})).status_code == 200

    page = await browser.until_shown("/console/usage", "<td>sales</td><td>2</td>",
                                     by="department")
    download = await browser.client.get("/console/usage.csv", params={"by": "department"})

    assert page.status_code == 200 and "<td>sales</td><td>2</td>" in page.text
    assert '<option selected>department</option>' in page.text
    assert '<th scope="col">department</th>' in page.text
    assert '<title id="usage-tokens-title">Tokens by department</title>' in page.text
    legend = page.text[page.text.index('<ul class="legend">'):]
    assert "sales" in legend[:legend.index("</ul>")]
    assert "<script>x" not in page.text and '"onload="' not in page.text
    assert "&lt;script&gt;x&lt;/script&gt;&#34;onload=&#34;" in page.text
    lines = download.text.splitlines()
    assert lines[0].startswith("department,requests")
    assert any(line.startswith("sales,2,") for line in lines)
