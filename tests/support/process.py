"""rolegate as a real process: started with a config file on a free port, stopped with SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class GatewayProcess:
    """`async with GatewayProcess(config_text, workdir) as gateway:` -> `gateway.url`.

    With `config_text=None` the gateway runs on its embedded defaults, as `rolegate serve` does
    with no `--config`. The process runs in `workdir`; `state_dir` is relative to it.
    """

    def __init__(self, config_text: str | None, workdir: Path, *,
                 ready_path: str = "/health/live", env: dict[str, str] | None = None,
                 state_dir: str | None = "state") -> None:
        self.workdir = workdir
        self.port = free_port()
        self.config: Path | None = None
        if config_text is not None:
            self.config = workdir / "rolegate.yaml"
            self.config.write_text(config_text)
        # None: no --state-dir, so rolegate uses its default (.rolegate in its working directory).
        self.state_dir = state_dir
        self.ready_path = ready_path
        self.env = {**os.environ, **(env or {})}
        self.log_path = workdir / "gateway.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def records(self, logger: str | None = None) -> list[dict[str, Any]]:
        """The log's lines (one JSON object each: `logging.format: json`, the default), those
        of `logger` when it is given. A line that is not a JSON object fails the test."""
        records = []
        for line in self.log().splitlines():
            record = json.loads(line)
            assert isinstance(record, dict), line
            if logger is None or record.get("logger") == logger:
                records.append(record)
        return records

    def command(self) -> list[str]:
        config = ["--config", str(self.config)] if self.config is not None else []
        state = ["--state-dir", self.state_dir] if self.state_dir is not None else []
        return [sys.executable, "-m", "rolegate", "serve", *config, "--port", str(self.port),
                *state]

    async def __aenter__(self) -> GatewayProcess:
        with self.log_path.open("wb") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(self.command(), cwd=self.workdir, stdout=log,
                                            stderr=subprocess.STDOUT, env=self.env)
        try:
            await self._wait_ready()
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def _wait_ready(self, timeout: float = 20.0) -> None:
        assert self.process is not None
        deadline = asyncio.get_running_loop().time() + timeout
        async with httpx.AsyncClient() as client:
            while asyncio.get_running_loop().time() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"rolegate exited early:\n{self.log()}")
                try:
                    response = await client.get(self.url + self.ready_path, timeout=1)
                    if response.status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError(f"rolegate did not become ready:\n{self.log()}")

    async def __aexit__(self, *exc: object) -> None:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        for _ in range(100):
            if self.process.poll() is not None:
                return
            await asyncio.sleep(0.05)
        self.process.kill()
        self.process.wait()


async def rolegate_command(config: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run `rolegate ARGS --config CONFIG` (in the config's directory); its standard output.
    A non-zero exit fails the test with its standard error."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rolegate", *args, "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})}, cwd=config.parent)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return out.decode().strip()
