"""Running wrk with one of the bench/wrk scripts and parsing its BENCHJSON line."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
from pathlib import Path

from bench.procs import pinning

WRK_DIR = Path(__file__).resolve().parent / "wrk"
PREFIX = "BENCHJSON "


class WrkError(RuntimeError):
    pass


def wrk_version() -> str:
    if not shutil.which("wrk"):
        raise WrkError("wrk is not installed (apt-get install -y wrk)")
    out = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=10)
    return (out.stdout + out.stderr).splitlines()[0].strip()


def run_wrk(url: str, script: str, *, connections: int, threads: int, duration: float,
            auth: str | None = None, cpus: frozenset[int] | None = None) -> dict:
    """One wrk run (on `cpus` only, when given); returns the dict printed by the script's
    done() (latencies in us), with `cpu_s`: the CPU seconds wrk itself used."""
    threads = max(1, min(threads, connections))
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s",
            "--timeout", "10s", "-s", str(WRK_DIR / script), url]
    env = {**os.environ, "BENCH_AUTH": auth or ""}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(argv, capture_output=True, text=True, env=env,
                         timeout=duration + 60, preexec_fn=pinning(cpus))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    for line in out.stdout.splitlines():
        if line.startswith(PREFIX):
            result = json.loads(line[len(PREFIX):])
            result["connections"] = connections
            result["cpu_s"] = round(after.ru_utime + after.ru_stime
                                    - before.ru_utime - before.ru_stime, 3)
            return result
    raise WrkError(f"wrk gave no result (exit {out.returncode}): "
                   f"{(out.stderr or out.stdout).strip()[-400:]}")
