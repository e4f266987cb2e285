"""HAProxy in front of gateway replicas, as `docs/deployment.md` configures it: health checks
on `/health/ready`, each replica also listed unchecked as a backup, and retries of connection
failures only (a request that reached a replica is never sent twice).

>>> async with Balancer([8001, 8002, 8003], workdir) as balancer: balancer.url
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path
from typing import Self

import httpx
import pytest

from tests.support.process import free_port

HAPROXY = "/usr/sbin/haproxy"


def haproxy_config(port: int, replicas: list[int]) -> str:
    checked = "\n".join(f"  server r{index} 127.0.0.1:{replica} check"
                        for index, replica in enumerate(replicas))
    backups = "\n".join(f"  server r{index}-unchecked 127.0.0.1:{replica} backup"
                        for index, replica in enumerate(replicas))
    return f"""global
  maxconn 2000
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  retries 3
  option redispatch 1
  retry-on conn-failure
frontend gateway
  bind 127.0.0.1:{port}
  default_backend replicas
backend replicas
  balance roundrobin
  option httpchk GET /health/ready
  http-check expect status 200
  default-server inter 300ms fall 2 rise 2
  option allbackups
{checked}
{backups}
"""


def haproxy_path() -> str:
    """HAProxy's binary; skips the test when it is missing, fails it when REQUIRE_LB=1 (CI)."""
    path = shutil.which("haproxy") or (HAPROXY if os.path.exists(HAPROXY) else None)
    if path is None:
        if os.environ.get("REQUIRE_LB") == "1":
            pytest.fail("haproxy is not installed (REQUIRE_LB=1): apt-get install haproxy")
        pytest.skip("haproxy is not installed (apt-get install haproxy)")
    return path


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
