"""The console's Explain page for an API key's id and for a set of claims: the same steps,
principal, rules and decision `rolegate explain --json` gives for the same inputs, with every
name and claim value shown as text."""

from __future__ import annotations

import asyncio
import html
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from rolegate.cli import cli
from tests.integration.console.conftest import Browser, console_config
from tests.integration.console.test_key_edit import new_key

HOSTILE = '<script>alert(1)</script>"onload="x'


def shown(page: str) -> dict[str, Any]:
    """What the page reports: the summary, the steps, the principal and the rules."""
    summary = re.search(r'<p id="summary">(.*?)</p>', page, re.S)
    steps = re.findall(r"<li><strong>(.*?)</strong>: (ok|failed), (.*?)</li>", page, re.S)
    principal = dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", page.split("<h3>Principal")[1]
                                if "<h3>Principal" in page else ""))
    rules = re.findall(r"<tr><td>(.*?)</td><td>(yes|no)</td>\s*<td>(.*?)</td></tr>", page)
    assert summary is not None
    return {"summary": html.unescape(summary.group(1)),
            "steps": [(html.unescape(n), ok == "ok", html.unescape(d)) for n, ok, d in steps],
            "principal": {html.unescape(k): html.unescape(v) for k, v in principal.items()},
            "rules": [(html.unescape(n), g == "yes", html.unescape(u)) for n, g, u in rules]}


def printed(report: dict[str, Any]) -> dict[str, Any]:
    """The same parts of the CLI's JSON report, as the page words them."""
    return {"summary": report["summary"],
            "steps": [(s["name"], s["ok"], s["detail"]) for s in report["steps"]],
            "principal": {name: str(value) for name, value in
                          (report["principal"] or {}).items()},
            "rules": [(r["name"], r["grants"], "; ".join(r["unmet"])) for r in report["rules"]]}


@pytest.fixture
def cli_explain(tmp_path: Path, dev_issuer):
    """`rolegate explain --json ARGS` on the console's own configuration and database."""
    config = tmp_path / "rolegate.yaml"
    config.write_text(yaml.safe_dump(console_config(
        f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")))
    dev_issuer.save(tmp_path / "state")

    async def run(*args: str) -> tuple[int, dict[str, Any]]:
        # In a thread: the command runs its own event loop, as it does in a terminal.
        result = await asyncio.to_thread(CliRunner().invoke, cli, [
            "explain", "--json", "--config", str(config), "--state-dir",
            str(tmp_path / "state"), *args])
        assert "Traceback" not in result.output, result.output
        return result.exit_code, json.loads(result.stdout)
    return run


@pytest.mark.parametrize(("route", "model", "status"), [
    ("/v1/chat/completions", "echo", 200), ("/admin/keys", "", 403)],
    ids=["allowed", "refused"])
async def test_explaining_a_key_id_matches_the_cli(browser: Browser, cli_explain, route, model,
                                                   status):
    csrf = await browser.sign_in()
    _, key_id = await new_key(browser, csrf)

    page = await browser.client.post("/console/explain", data={
        "csrf": csrf, "key_id": key_id, "route": route, "model": model})
    code, report = await cli_explain("--key-id", key_id, "--route", route,
                               *(("--model", model) if model else ()))

    assert page.status_code == 200
    assert f"({status})</h2>" in page.text and report["status"] == status
    assert code == (0 if status == 200 else 1)
    assert shown(page.text) == printed(report)
    assert report["principal"]["key_id"] == key_id


async def test_explaining_claims_matches_the_cli_and_shows_them_as_text(
        browser: Browser, cli_explain, dev_issuer):
    csrf = await browser.sign_in()
    claims = {"iss": dev_issuer.issuer, "sub": HOSTILE, "roles": ["rolegate.user", HOSTILE]}

    page = await browser.client.post("/console/explain", data={
        "csrf": csrf, "claims": json.dumps(claims), "model": "echo"})
    code, report = await cli_explain("--claims", json.dumps(claims), "--route",
                               "/v1/chat/completions", "--model", "echo")

    assert page.status_code == 200 and code == 0 and report["allowed"]
    assert shown(page.text) == printed(report)
    assert "none was verified" in report["summary"]
    assert "<script>alert(1)" not in page.text and '"onload="x' not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34;onload=&#34;x" in page.text


async def test_claims_of_an_unknown_issuer_are_refused_as_the_cli_refuses_them(
        browser: Browser, cli_explain):
    csrf = await browser.sign_in()
    claims = json.dumps({"iss": "https://elsewhere.example/", "sub": "x"})

    page = await browser.client.post("/console/explain", data={"csrf": csrf, "claims": claims})
    code, report = await cli_explain("--claims", claims, "--route", "/v1/chat/completions")

    assert "Refused (401)" in page.text and code == 1
    assert shown(page.text) == printed(report)


@pytest.mark.parametrize(("fields", "message"), [
    ({}, "Give one of"), ({"key_id": "k", "claims": "{}"}, "Give one of"),
    ({"claims": "{not json"}, "not JSON"), ({"claims": "[1]"}, "a JSON object"),
    ({"claims": " " + "x" * 20000}, "too long")],
    ids=["none", "two", "not-json", "not-an-object", "too-long"])
async def test_a_question_that_is_not_one_well_formed_thing_is_a_400(browser: Browser, fields,
                                                                     message):
    csrf = await browser.sign_in()

    response = await browser.client.post("/console/explain", data={"csrf": csrf, **fields})

    assert response.status_code == 400
    assert message in response.json()["error"]["message"]


async def test_an_unknown_key_id_is_explained_as_not_known(browser: Browser, cli_explain):
    csrf = await browser.sign_in()

    page = await browser.client.post("/console/explain", data={"csrf": csrf,
                                                                "key_id": "<b>nope</b>"})
    code, report = await cli_explain("--key-id", "<b>nope</b>", "--route", "/v1/chat/completions")

    assert "Refused (401)" in page.text and "the key is not known" in page.text
    assert shown(page.text) == printed(report) and code == 1
    assert "<b>nope</b>" not in page.text
