"""The console's Overview charts (requests, errors, latency, denials per model over a chosen
period) and the Policy page's recent matches: numbers from real requests, names as text."""

from __future__ import annotations

import re

from tests.integration.console.conftest import Browser

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def table_of(page: str, title: str) -> str:
    """The data table that stands in for the chart called `title`."""
    found = re.search(rf"<caption>{re.escape(title)} \(.*?</table>", page, re.S)
    assert found is not None, f"no table for {title}"
    return found.group(0)


async def test_the_overview_charts_requests_and_denials_per_model(browser: Browser, dev_issuer):
    await browser.sign_in()
    user = {"Authorization": f"Bearer {dev_issuer.mint(roles=('rolegate.user',))}"}
    for _ in range(3):
        reply = await browser.client.post("/v1/chat/completions", json={**CHAT, "model": "echo"},
                                          headers=user)
        assert reply.status_code == 200
    await browser.client.get("/v1/models", headers={"Authorization": "Bearer nonsense"})

    page = (await browser.until_shown("/console", '<th scope="col">echo</th>',
                                      window="hour")).text

    requests = table_of(page, "Requests")
    assert re.search("<td>3</td>", requests), requests
    denials = table_of(page, "Denials (401 and 403)")
    assert "(not authenticated)" in denials and "<td>1</td>" in denials
    assert table_of(page, "Latency, median (p50)").count("<td>") >= 60  # a row per minute
    for chart in ("requests", "errors", "latency-p50", "latency-p95", "denials"):
        assert f'aria-labelledby="{chart}-title {chart}-desc"' in page
        assert f'<title id="{chart}-title">' in page
    assert '<desc id="requests-desc">Requests: 1 series over 60 intervals' in page


async def test_the_overview_period_is_one_of_hour_day_or_week(browser: Browser):
    await browser.sign_in(roles="viewer")

    week = await browser.client.get("/console", params={"window": "week"})
    unknown = await browser.client.get("/console", params={"window": "year"})

    assert week.status_code == 200 and '<option value="week" selected>' in week.text
    assert table_of(week.text, "Denials (401 and 403)").count("<tr><th scope=\"row\">") == 56
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "invalid_query"


async def test_policy_lists_the_principals_each_rule_granted(browser: Browser, dev_issuer):
    await browser.sign_in(subject="ops")
    token = dev_issuer.mint(subject="carol", roles=("rolegate.user",))
    for _ in range(2):
        await browser.client.get("/v1/models", headers={"Authorization": f"Bearer {token}"})

    page = (await browser.client.get("/console/policy")).text

    users = page[page.index("Rule users"):page.index("Rule viewers")]
    assert re.search(r"<td>carol</td>\s*<td>2</td>", users), users
    admins = page[page.index("Rule admins"):]
    assert "<td>ops</td>" in admins and "carol" not in admins
    assert "No request granted by this rule yet." in page[page.index("Rule viewers"):
                                                          page.index("Rule admins")]
