"""The console under `rolegate serve --workers 2`: with no `console.session_secret`, the workers
share the one `serve` made, so a browser signed in at one worker is
signed in at every worker, and each sign-in step may land on any of them."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from tests.e2e.test_serve_workers import WorkersProcess, worker_pids

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

CONFIG = """
models: [{name: echo, provider: mock}]
auth: {dev_issuer: {enabled: true}}
policy:
  - {name: admins, when: {roles: [rolegate.admin]}, allow: {routes: [admin, console]}}
"""
FIELDS = ("client_id", "redirect_uri", "state", "nonce", "code_challenge")


async def step(base: str, cookies: httpx.Cookies, method: str, url: str,
               **kwargs: object) -> httpx.Response:
    """One request on a new connection (the kernel spreads those over the workers), carrying
    and keeping the browser's cookies."""
    async with httpx.AsyncClient(base_url=base, cookies=cookies, timeout=10) as client:
        response = await client.request(method, url, **kwargs)  # type: ignore[arg-type]
        cookies.update(client.cookies)
        return response


def local(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def test_a_session_begun_at_one_worker_is_good_at_every_worker(workdir: Path) -> None:
    async with WorkersProcess(CONFIG, workdir) as gateway:
        assert gateway.process is not None
        cookies = httpx.Cookies()
        start = await step(gateway.url, cookies, "GET", "/console/login")
        params = dict(parse_qsl(urlsplit(start.headers["location"]).query))
        back = await step(gateway.url, cookies, "POST", "/dev/authorize", data={
            **{name: params[name] for name in FIELDS}, "subject": "ops",
            "roles": "rolegate.admin"})
        done = await step(gateway.url, cookies, "GET", local(back.headers["location"]))
        assert (done.status_code, done.headers["location"]) == (303, "/console"), done.text

        statuses = [(await step(gateway.url, cookies, "GET", "/console/keys")).status_code
                    for _ in range(12)]

        assert statuses == [200] * 12
        assert len(worker_pids(gateway.process.pid)) >= 2
