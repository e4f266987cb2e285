"""The real process after a few requests: `/metrics` scraped over a socket counts them, and the
process log holds one access line per request and none of the tokens it was sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from tests.e2e.calls import bearer, chat, config_yaml, eventually, rule, upstream_model
from tests.support.keys import KeyPair, claims
from tests.support.process import GatewayProcess
from tests.support.scrape import Scrape
from tests.support.servers import LocalIdp, RecordingUpstream

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

KEY = KeyPair.rsa("metrics-key")
AUDIENCE = "rolegate-e2e"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(idp: LocalIdp, shared_upstream: RecordingUpstream,
                  workdir: Path) -> AsyncIterator[GatewayProcess]:
    config = config_yaml(
        models=[upstream_model("gpt-4o", shared_upstream.url), {"name": "echo",
                                                                "provider": "mock"}],
        issuers=[{"name": "corp", "issuer": idp.issuer, "jwks_url": idp.jwks_url,
                  "audiences": [AUDIENCE]}],
        policy=[rule("users", {"roles": ["user"]}, ["inference", "info"], ["echo"])],
        logging={"level": "info"})
    async with GatewayProcess(config, workdir) as process:
        yield process


async def test_a_scrape_counts_the_requests_before_it_and_the_log_has_one_line_each(
        gateway: GatewayProcess, idp: LocalIdp):
    token = KEY.sign(claims(idp.issuer, AUDIENCE, roles=["user"]))
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        sent = [
            await http.post("/v1/chat/completions", json=chat("echo"), headers=bearer(token)),
            await http.post("/v1/chat/completions", json=chat("echo", stream=True),
                            headers=bearer(token)),
            await http.post("/v1/chat/completions", json=chat("gpt-4o"), headers=bearer(token)),
            await http.post("/v1/chat/completions", json=chat("echo")),
        ]
        scraped = await http.get("/metrics")
    ids = {response.headers["x-request-id"] for response in [*sent, scraped]}

    assert [response.status_code for response in sent] == [200, 200, 403, 401]
    metrics = Scrape(scraped.text)
    assert metrics.value("rolegate_requests_total", route_group="inference", model="echo",
                         status="200") == 2
    assert metrics.value("rolegate_requests_total", route_group="inference", model="gpt-4o",
                         status="403") == 1
    assert metrics.value("rolegate_authn_failures_total", code="missing_token") == 1
    assert metrics.value("rolegate_upstream_first_byte_seconds_count", model="echo",
                         deployment="echo") == 1
    assert metrics.value("rolegate_jwks_keys", issuer="corp") == 1

    def access_ids() -> list[str]:
        return [line["request_id"] for line in gateway.records("rolegate.access")]

    async def all_logged() -> bool:  # the scrape's own line is written after its answer
        return ids <= set(access_ids())
    assert await eventually(all_logged), gateway.log()
    assert all(access_ids().count(request_id) == 1 for request_id in ids)
    assert token not in gateway.log()
    assert token.split(".")[2] not in gateway.log()
