"""`rolegate serve --workers 2`: two worker processes behind one port, each built from the same
options, trusting the same development issuer key and forwarding to the same upstream."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from rolegate.authn.dev_issuer import DevIssuer
from tests.support.process import GatewayProcess
from tests.support.servers import RecordingUpstream

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

CONFIG = """
models:
  - name: small
    provider: openai-compatible
    api_base: {upstream}/v1
auth:
  dev_issuer: {{enabled: true}}
policy:
  - name: users
    when: {{roles: [rolegate.user]}}
    allow: {{routes: [inference, info], models: ["*"]}}
"""


class WorkersProcess(GatewayProcess):
    def command(self) -> list[str]:
        return [*super().command(), "--workers", "2"]


def worker_pids(pid: int) -> set[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return {int(child) for child in children}


async def test_every_worker_trusts_the_dev_issuer_and_forwards(
        workdir: Path, upstream: RecordingUpstream) -> None:
    config = CONFIG.format(upstream=upstream.url)
    async with WorkersProcess(config, workdir) as gateway:
        assert gateway.process is not None
        token = DevIssuer.load(workdir / "state").mint()
        statuses = []
        for _ in range(12):  # a new connection each time, so the kernel spreads them over workers
            async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
                response = await client.post(
                    "/v1/chat/completions", headers={"Authorization": f"Bearer {token}"},
                    json={"model": "small", "messages": [{"role": "user", "content": "hi"}]})
                statuses.append(response.status_code)
                unauthenticated = await client.post(
                    "/v1/chat/completions", json={"model": "small", "messages": []})
                assert unauthenticated.status_code == 401
        assert statuses == [200] * 12
        assert len(upstream.requests) == 12
        assert len(worker_pids(gateway.process.pid)) >= 2
