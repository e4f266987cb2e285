"""`rolegate serve --workers 2`: two worker processes behind one port, each built from the same
options, trusting the same development issuer key and forwarding to the same upstream."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import httpx
import pytest

from rolegate.authn.dev_issuer import DevIssuer
from rolegate.config.model import DatabaseConfig
from tests.support.process import GatewayProcess
from tests.support.servers import RecordingUpstream
from tests.support.storage import POSTGRES_URL, _execute

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


def metric_value(exposition: str, name: str, **labels: str) -> float | None:
    """The value of one sample of the Prometheus text `exposition`, or None when absent."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in exposition.splitlines():
        sample, _, value = line.rpartition(" ")
        if not sample.startswith(name + "{") and sample != name:
            continue
        label_text = sample[len(name) + 1:-1] if sample.endswith("}") else ""
        if ",".join(sorted(label_text.split(","))) == wanted:
            return float(value)
    return None


def jwks_fetches(exposition: str) -> list[float]:
    """The values of `rolegate_jwks_fetches_total{outcome="success"}` (one per issuer)."""
    return [float(line.rpartition(" ")[2]) for line in exposition.splitlines()
            if line.startswith("rolegate_jwks_fetches_total{") and '"success"' in line]


def metrics_dir_of(worker: int) -> Path:
    environ = Path(f"/proc/{worker}/environ").read_bytes().split(b"\0")
    value = next(entry for entry in environ if entry.startswith(b"PROMETHEUS_MULTIPROC_DIR="))
    return Path(value.split(b"=", 1)[1].decode())


async def test_metrics_from_any_worker_count_the_requests_of_every_worker(
        workdir: Path, upstream: RecordingUpstream) -> None:
    """Each scrape reaches one worker (a new connection each time); each shows the requests
    every worker answered. The workers' metric files go when `serve` stops."""
    sent = 24
    async with WorkersProcess(CONFIG.format(upstream=upstream.url), workdir) as gateway:
        assert gateway.process is not None
        workers = worker_pids(gateway.process.pid)
        metrics_dir = metrics_dir_of(next(iter(workers)))
        assert metrics_dir.is_dir()
        token = DevIssuer.load(workdir / "state").mint()
        for _ in range(sent):
            async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
                response = await client.post(
                    "/v1/chat/completions", headers={"Authorization": f"Bearer {token}"},
                    json={"model": "small", "messages": [{"role": "user", "content": "hi"}]})
                assert response.status_code == 200
        # Scrape-time state (key fetches) reaches the other workers' scrapes within a second:
        # scrape until it has, then keep every scrape of the next few.
        deadline = asyncio.get_running_loop().time() + 10
        scrapes: list[str] = []
        while len(scrapes) < 8 and asyncio.get_running_loop().time() < deadline:
            async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
                text = (await client.get("/metrics")).text
            if scrapes or jwks_fetches(text) == [2]:  # --workers 2: one fetch each
                scrapes.append(text)
            else:
                await asyncio.sleep(0.1)
        assert len(upstream.requests) == sent
    assert len(scrapes) == 8, "the workers' key fetches never showed summed"
    counted = [metric_value(text, "rolegate_requests_total", route_group="inference",
                            model="small", status="200") for text in scrapes]
    assert counted == [sent] * len(scrapes)
    for text in scrapes:  # live gauges combine over workers: one series, no pid label
        assert metric_value(text, "rolegate_usage_records_pending") is not None
        assert 'pid="' not in text
        # each worker loaded the issuer's keys once: the scrape-time counters are summed too
        assert jwks_fetches(text) == [2]
    assert not metrics_dir.exists()


async def test_workers_start_on_a_new_postgresql_schema_they_migrate_at_start_up(
        workdir: Path, upstream: RecordingUpstream) -> None:
    """`migrate_on_start` with several workers: `serve` migrates once before they start, so
    they do not race to create the schema (one of them failing stopped the whole serve)."""
    schema = f"rg_workers_{secrets.token_hex(4)}"
    config = CONFIG.format(upstream=upstream.url) + f"""
database:
  url: {POSTGRES_URL}
  schema: {schema}
  migrate_on_start: true
"""
    try:
        async with WorkersProcess(config, workdir, ready_path="/health/ready") as gateway:
            assert gateway.process is not None
            token = DevIssuer.load(workdir / "state").mint()
            for _ in range(6):
                async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
                    response = await client.post(
                        "/v1/chat/completions", headers={"Authorization": f"Bearer {token}"},
                        json={"model": "small", "messages": [{"role": "user", "content": "x"}]})
                    assert response.status_code == 200
            assert gateway.is_running
            assert len([pid for pid in worker_pids(gateway.process.pid)
                        if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text()]) == 2
        assert "failed to start" not in gateway.log()
    finally:
        await _execute(DatabaseConfig(url=POSTGRES_URL),
                       f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
