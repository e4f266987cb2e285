"""`use_multiprocess_values`: a worker's metrics go to files of its own process id, read once
(no system call per update) and again after a fork, so a forked child's counts never land in
its parent's file and the two sum. Run in a fresh interpreter: the switch is process-wide."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

SCRIPT = """
import os, sys
from rolegate.observability.multiprocess import use_multiprocess_values
use_multiprocess_values()
from prometheus_client import CollectorRegistry, Counter
counter = Counter("forked", "counted by a parent and its child", registry=CollectorRegistry())
counter.inc(3)
child = os.fork()
if child == 0:
    counter.inc(4)
    os._exit(0)
os.waitpid(child, 0)
counter.inc(5)
print(os.getpid(), child)
"""


def test_a_forked_child_counts_in_its_own_file_and_the_counts_sum(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
                               "PATH": "/usr/bin:/bin"}, timeout=60, check=True)
    parent, child = done.stdout.split()

    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        [f"counter_{parent}.db", f"counter_{child}.db"])
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))  # type: ignore[no-untyped-call]
    assert registry.get_sample_value("forked_total") == 3 + 4 + 5
