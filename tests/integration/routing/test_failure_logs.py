"""The access line of a request whose upstreams failed says why, where and how often: the cause
of the last failed attempt, its deployment and the number of attempts."""

from __future__ import annotations

import json
import logging

import pytest

from tests.integration.routing.conftest import deployment
from tests.support.faulty import Fault

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [json.loads(record.getMessage()) for record in caplog.records
            if record.name == "rolegate.access"]


async def test_a_request_every_upstream_failed_logs_the_cause_deployment_and_attempts(
        upstreams, routing_settings, client_for, auth_for, caplog):
    a, b = await upstreams("a", "b")
    a.default = Fault.error(503)
    b.default = Fault.reset()
    client = client_for(routing_settings(
        [{"name": "gpt-4o", "deployments": [deployment(a), deployment(b)]}],
        retries={"max_attempts": 2}))

    with caplog.at_level(logging.INFO, logger="rolegate"):
        response = await client.post("/v1/chat/completions", json=CHAT,
                                     headers=auth_for("user"))

    [line] = access_lines(caplog)
    assert response.status_code == 502
    assert line["status"] == 502 and line["attempts"] == 2
    assert line["deployment"] in ("a", "b")
    assert line["cause"] == ("the upstream answered 503" if line["deployment"] == "a"
                             else response.json()["error"]["message"])


async def test_a_retried_success_keeps_the_cause_of_the_failed_attempt(
        upstreams, routing_settings, client_for, auth_for, caplog):
    (a,) = await upstreams("a")
    a.plan(Fault.error(500), Fault.ok())
    client = client_for(routing_settings([{"name": "gpt-4o", "deployments": [deployment(a)]}]))

    with caplog.at_level(logging.INFO, logger="rolegate"):
        response = await client.post("/v1/chat/completions", json=CHAT,
                                     headers=auth_for("user"))

    [line] = access_lines(caplog)
    assert response.status_code == 200
    assert (line["deployment"], line["attempts"], line["cause"]) == (
        "a", 2, "the upstream answered 500")
