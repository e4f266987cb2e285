"""Running wrk with one of the bench/wrk scripts and parsing its BENCHJSON line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

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
            auth: str | None = None) -> dict:
    """One wrk run; returns the dict printed by the script's done() (latencies in us)."""
    threads = max(1, min(threads, connections))
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s",
            "--timeout", "10s", "-s", str(WRK_DIR / script), url]
    env = {**os.environ, "BENCH_AUTH": auth or ""}
    out = subprocess.run(argv, capture_output=True, text=True, env=env,
                         timeout=duration + 60)
    for line in out.stdout.splitlines():
        if line.startswith(PREFIX):
            result = json.loads(line[len(PREFIX):])
            result["connections"] = connections
            return result
    raise WrkError(f"wrk gave no result (exit {out.returncode}): "
                   f"{(out.stderr or out.stdout).strip()[-400:]}")
