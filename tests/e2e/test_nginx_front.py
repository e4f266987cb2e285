"""docs/deployment.md's nginx configuration, run: in front of a gateway process it passes
requests, the caller's credential and request id through, and relays a stream chunk by chunk."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.e2e.calls import bearer, chat, config_yaml, rule, upstream_model
from tests.support.balancer import DOCUMENTED_REPLICAS, documented_config
from tests.support.binaries import system_program
from tests.support.keys import KeyPair, claims
from tests.support.process import GatewayProcess, free_port
from tests.support.servers import LocalIdp, RecordingUpstream

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

AUDIENCE = "rolegate-e2e"
KEY = KeyPair.rsa("nginx-key")


def nginx_config(directory: Path, port: int, replica: int) -> Path:
    text = documented_config("nginx").replace("listen 8080;", f"listen 127.0.0.1:{port};")
    for documented in DOCUMENTED_REPLICAS:  # every documented replica: the one gateway
        text = text.replace(documented, f"127.0.0.1:{replica}")
    config = directory / "nginx.conf"
    config.write_text(f"pid {directory / 'nginx.pid'};\n" + text)
    return config


async def test_the_documented_nginx_config_serves_and_streams_through_to_a_gateway(
        tmp_path: Path, idp: LocalIdp, upstream: RecordingUpstream) -> None:
    nginx = system_program("nginx", required_by="REQUIRE_LB")
    config = config_yaml(
        models=[upstream_model("gpt-test", upstream.url)],
        issuers=[{"name": "corp", "issuer": idp.issuer, "jwks_url": idp.jwks_url,
                  "audiences": [AUDIENCE]}],
        policy=[rule("users", {"roles": ["llm.user"]}, ["inference", "info"], ["*"])],
        accounting={"enabled": False})
    port = free_port()
    (tmp_path / "gateway").mkdir()
    async with GatewayProcess(config, tmp_path / "gateway") as gateway:
        front = subprocess.Popen(
            [nginx, "-g", "daemon off;", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"),
             "-c", str(nginx_config(tmp_path, port, gateway.port))],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                         timeout=10) as client:
                for _ in range(100):
                    try:
                        await client.get("/health/live")
                        break
                    except httpx.TransportError:
                        await asyncio.sleep(0.05)
                credential = KEY.sign(claims(idp.issuer, AUDIENCE, roles=["llm.user"]))
                plain = await client.post("/v1/chat/completions", json=chat("gpt-test"),
                                          headers={**bearer(credential), "x-request-id": "r1"})
                anonymous = await client.post("/v1/chat/completions", json=chat("gpt-test"))
                upstream.pacer = asyncio.Queue()
                events = []
                async with client.stream("POST", "/v1/chat/completions",
                                         json=chat("gpt-test", stream=True),
                                         headers=bearer(credential)) as stream:
                    async for line in stream.aiter_lines():
                        if line.startswith("data: "):
                            events.append(line)
                            upstream.pacer.put_nowait(None)  # the next chunk only now
        finally:
            front.kill()
            front.wait()

    assert plain.status_code == 200, plain.text
    assert plain.headers["x-request-id"] == "r1"
    assert anonymous.status_code == 401
    assert len(upstream.requests) == 2  # the anonymous call never reached it
    assert events[-1] == "data: [DONE]" and len(events) >= 4
