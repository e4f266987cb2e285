"""HAProxy in front of gateway replicas, configured by docs/deployment.md's own snippet: health
checks on `/health/ready`, each replica also listed unchecked as a backup, and retries of
connection failures only (a request that reached a replica is never sent twice).

>>> async with Balancer([8001, 8002, 8003], workdir) as balancer: balancer.url
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path
from typing import Self

import httpx

from tests.support.binaries import system_program
from tests.support.process import free_port

DEPLOYMENT_DOC = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"
# The replicas' addresses in the documented configs, in order.
DOCUMENTED_REPLICAS = ("10.0.0.11:8080", "10.0.0.12:8080", "10.0.0.13:8080")


def documented_config(language: str) -> str:
    """The ```haproxy or ```nginx block of docs/deployment.md."""
    found = re.search(rf"```{language}\n(.*?)```", DEPLOYMENT_DOC.read_text(), re.DOTALL)
    assert found is not None, f"docs/deployment.md has no {language} block"
    return found.group(1)


def haproxy_config(port: int, replicas: list[int]) -> str:
    """docs/deployment.md's HAProxy config, listening on `port` in front of `replicas`."""
    assert len(replicas) == len(DOCUMENTED_REPLICAS)
    config = documented_config("haproxy").replace("bind :8080", f"bind 127.0.0.1:{port}")
    for documented, replica in zip(DOCUMENTED_REPLICAS, replicas, strict=True):
        config = config.replace(documented, f"127.0.0.1:{replica}")
    return config


def haproxy_path() -> str:
    """HAProxy's binary; skips the test when it is missing, fails it when REQUIRE_LB=1 (CI)."""
    return system_program("haproxy", required_by="REQUIRE_LB")


class Balancer:
    def __init__(self, replicas: list[int], workdir: Path) -> None:
        self.port = free_port()
        self.config = workdir / "haproxy.cfg"
        self.config.write_text(haproxy_config(self.port, replicas))
        self.log = workdir / "haproxy.log"
        self._binary = haproxy_path()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Self:
        with self.log.open("wb") as log:  # the child keeps its own copy of the descriptor
            self._process = subprocess.Popen([self._binary, "-db", "-f", str(self.config)],
                                             stdout=log, stderr=subprocess.STDOUT)
        async with httpx.AsyncClient() as client:
            for _ in range(100):
                if self._process.poll() is not None:
                    raise RuntimeError(f"haproxy exited:\n{self.log.read_text()}")
                try:
                    if (await client.get(f"{self.url}/health/live")).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError("haproxy did not start")

    async def __aexit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
