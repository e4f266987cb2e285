"""Starting, readying, measuring and stopping the processes under test (Linux /proc)."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent



class NotReady(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(argv: list[str], env: dict[str, str], log_path: Path,
          cpus: frozenset[int] | None = None) -> subprocess.Popen:
    """Start argv in its own process group, output to log_path; on `cpus` only (and so are
    the processes it starts), when given."""
    log = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    full_env = {**os.environ, **env}
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=full_env,
                            start_new_session=True, preexec_fn=pinning(cpus))
    proc.log_file = log  # type: ignore[attr-defined]
    return proc


def pinning(cpus: frozenset[int] | None) -> Callable[[], None] | None:
    """A `preexec_fn` keeping the new process on `cpus` (None: anywhere)."""
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def parse_cpus(text: str | None) -> frozenset[int] | None:
    """"0", "0,1", "0-3" (as taskset's --cpu-list); None or "" for any CPU."""
    if not text:
        return None
    cpus: set[int] = set()
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return frozenset(cpus)


def wait_ready(url: str, proc: subprocess.Popen | None, started: float,
               timeout: float = 30.0) -> float:
    """Poll url until any HTTP answer; return seconds since `started` (a monotonic time)."""
    deadline = started + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise NotReady(f"process exited with code {proc.returncode} before ready")
        try:
            with urllib.request.urlopen(url, timeout=1.0):
                pass
            return time.monotonic() - started
        except urllib.error.HTTPError:  # any status means it is listening and answering
            return time.monotonic() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            time.sleep(0.02)
    raise NotReady(f"no answer from {url} within {timeout:.0f}s")


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise NotReady(f"service exited with code {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise NotReady(f"nothing listens on port {port} after {timeout:.0f}s")


def stop(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """SIGTERM the process group we started, then SIGKILL after `grace` seconds."""
    if proc.poll() is None:
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
    proc.log_file.close()  # type: ignore[attr-defined]


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def add_pinning(p: argparse.ArgumentParser) -> None:
    p.add_argument("--load-cpus", type=parse_cpus, default=None, metavar="LIST",
                   help="keep wrk and the mock upstream on these CPUs, e.g. 1 or 2-3 (any)")
    p.add_argument("--gateway-cpus", type=parse_cpus, default=None, metavar="LIST",
                   help="keep the gateway (and its workers) on these CPUs (any)")


def start_upstream(workroot: Path, cpus: frozenset[int] | None = None
                   ) -> tuple[object, str, float]:
    port = free_port()
    jwks_dir = workroot / "jwks"
    jwks_dir.mkdir()
    argv = [sys.executable, "-m", "bench.upstream", "--port", str(port),
            "--jwks-dir", str(jwks_dir)]
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH.parent),
                                                        os.environ.get("PYTHONPATH")]))}
    started = time.monotonic()
    proc = start(argv, env, workroot / "upstream.log", cpus)
    root = f"http://127.0.0.1:{port}"
    return proc, root, wait_ready(root + "/v1/models", proc, started)
