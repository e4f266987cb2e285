"""`limits.lease` with two processes sharing the real Redis: how far past a limit they admit,
against the same two processes with exact limits (the default).

Each process runs `tests/support/lease_worker.py` on a simulated clock tied to the real one (two
simulated minutes in about three real seconds), trying several requests every simulated half
second, so both spend the same counters at the same time."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from tests.support.storage import REDIS_URL

BASE = 1_750_000_020.0  # 20 s into a minute
PROCESSES = 2


def admitted_by_two_processes(prefix: str, lease: dict[str, Any] | None,
                              limits: dict[str, Any], *, reserve: float = 0.0,
                              use: int = 0) -> list[float]:
    config = {"url": REDIS_URL, "prefix": prefix, "lease": lease, "limits": limits,
              "start": time.time() + 2.0, "base": BASE, "steps": 240, "step": 0.5,
              "real_step": 0.0125, "tries": 3, "reserve": reserve, "use": use}
    workers = [subprocess.Popen([sys.executable, "-m", "tests.support.lease_worker",
                                 json.dumps(config)], stdout=subprocess.PIPE)
               for _ in range(PROCESSES)]
    times: list[float] = []
    for worker in workers:
        out, _ = worker.communicate(timeout=60)
        assert worker.returncode == 0
        times += json.loads(out)
    return sorted(times)


def most_in_any_minute(times: list[float]) -> int:
    """The most admitted within any 60 s (the sliding window `rpm` counts)."""
    return max(sum(1 for t in times if start <= t < start + 60) for start in times)


def per_clock_minute(times: list[float]) -> list[int]:
    minutes: dict[int, int] = {}
    for t in times:
        minutes[int(t // 60)] = minutes.get(int(t // 60), 0) + 1
    return [minutes[minute] for minute in sorted(minutes)]


async def test_request_leases_pass_the_limit_by_at_most_a_block_per_process(redis_prefix):
    limits = {"rpm": 100}
    exact = admitted_by_two_processes(redis_prefix + ":exact", None, limits)
    leased = admitted_by_two_processes(redis_prefix + ":lease",
                                       {"requests": 10, "ttl": 5}, limits)

    assert most_in_any_minute(exact) == 100
    # Block members carry the time the block was taken: at the window's edge, up to one
    # block per process more.
    assert 100 <= most_in_any_minute(leased) <= 100 + PROCESSES * 10
    # Over two minutes neither leaves the limit unused for long: about two windows' worth.
    assert len(leased) >= 2 * 100 - PROCESSES * 10


async def test_token_leases_pass_the_limit_by_at_most_a_reservation_per_process(redis_prefix):
    limits = {"tpm": 1000}
    # Each request reserves and uses 60 tokens: 16 fit under 1000, the 17th starts at 960.
    exact = admitted_by_two_processes(redis_prefix + ":exact", None, limits,
                                      reserve=60, use=60)
    leased = admitted_by_two_processes(redis_prefix + ":lease", {"tokens": 200, "ttl": 5},
                                       limits, reserve=60, use=60)

    assert max(per_clock_minute(exact)) == 17
    # A process may start a request while its block has anything left: one reservation past
    # the limit per process, at most.
    assert max(per_clock_minute(leased)) <= (1000 + PROCESSES * 60) // 60 + 1
    assert min(per_clock_minute(leased)[:2]) >= 16 - PROCESSES * (200 // 60)
