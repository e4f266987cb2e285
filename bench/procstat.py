"""CPU time and peak memory of a process tree, read from /proc."""

from __future__ import annotations

import os
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; everything after the last ')' is fixed.
    return raw[raw.rindex(")") + 2:].split()


def _parents() -> dict[int, int]:
    """pid -> parent pid for every process (one scan of /proc)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields:  # after ')': state=0 ppid=1
                parents[int(entry.name)] = int(fields[1])
    return parents


def tree(pid: int) -> list[int]:
    """pid and all its live descendants."""
    kids: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        kids.setdefault(parent, []).append(child)
    pids, todo = [], [pid]
    while todo and len(pids) < 10_000:
        current = todo.pop()
        pids.append(current)
        todo += kids.get(current, [])
    return pids


def cpu_seconds(pid: int) -> float:
    """utime+stime of the live tree, plus cutime+cstime (children that already exited)."""
    ticks = 0
    for p in tree(pid):
        fields = _stat_fields(p)
        if fields:  # after ')': state=0 ... utime=11 stime=12 cutime=13 cstime=14
            ticks += sum(int(fields[i]) for i in (11, 12, 13, 14))
    return ticks / CLK_TCK


def peak_rss_mb(pid: int) -> float:
    """Sum of VmHWM (peak resident set) over the live tree, in MiB."""
    total_kb = 0
    for p in tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024
