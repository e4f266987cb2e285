"""Comparing modes with their baselines, printing the table, writing the JSON."""

from __future__ import annotations

import json
import statistics
import shutil
from pathlib import Path

COLUMNS = ["mode", "req/s", "p50 ms", "p90 ms", "p99 ms", "+p50 c=1 ms", "+p99 c=1 ms",
           "+p50 c=N ms", "ratio", "CPU s/1k", "CPU ratio", "RSS MB", "ready s"]
STREAM_COLUMNS = ["mode", "TTFB p50 ms", "TTFB p99 ms", "total p50 ms", "total p99 ms", "errors"]


def merge_rounds(rounds: list[list[dict]]) -> list[dict]:
    """One result per mode from several rounds (each a list in the same mode order): the round
    of median req/s, with the median CPU s/1k of all rounds; every round's req/s and CPU s/1k
    kept under `rounds`. A mode that failed in any round is that failure."""
    merged = []
    for runs in zip(*rounds, strict=True):
        failed = [run for run in runs if run["status"] != "ok"]
        if failed or len(runs) == 1:
            merged.append(failed[0] if failed else runs[0])
            continue
        by_rps = sorted(runs, key=lambda run: run["load"]["rps"])
        cpus = [run["cpu_s_per_1k"] for run in runs if run["cpu_s_per_1k"] is not None]
        merged.append({**by_rps[len(by_rps) // 2],
                       "cpu_s_per_1k": statistics.median(cpus) if cpus else None,
                       "rounds": [{"rps": run["load"]["rps"], "cpu_s_per_1k": run["cpu_s_per_1k"]}
                                  for run in runs]})
    return merged


def add_comparisons(results: list[dict]) -> None:
    """Added latency (p50 and p99 at c=1, p50 at c=N) and throughput ratio against each mode's
    baseline."""
    by_name = {r["mode"]: r for r in results if r["status"] == "ok"}
    for r in by_name.values():
        base = by_name.get(r["baseline"])
        if base is None:
            r["added_p50_c1_ms"] = r["added_p99_c1_ms"] = r["added_p50_cN_ms"] = None
            r["ratio"] = r["cpu_ratio"] = None
            continue
        r["added_p50_c1_ms"] = (r["c1"]["p50_us"] - base["c1"]["p50_us"]) / 1e3
        r["added_p99_c1_ms"] = (r["c1"]["p99_us"] - base["c1"]["p99_us"]) / 1e3
        r["added_p50_cN_ms"] = (r["load"]["p50_us"] - base["load"]["p50_us"]) / 1e3
        r["ratio"] = r["load"]["rps"] / base["load"]["rps"] if base["load"]["rps"] else None
        r["cpu_ratio"] = (r["cpu_s_per_1k"] / base["cpu_s_per_1k"]
                          if r["cpu_s_per_1k"] and base["cpu_s_per_1k"] else None)


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def row(r: dict) -> list[str]:
    if r["status"] != "ok":
        return [r["mode"], r["status"]] + ["-"] * (len(COLUMNS) - 2)
    load = r["load"]
    errors = f' ({load["errors"]} err)' if load["errors"] else ""
    return [r["mode"], _fmt(load["rps"], 0) + errors,
            *(_fmt(load[k] / 1e3, 3) for k in ("p50_us", "p90_us", "p99_us")),
            _fmt(r["added_p50_c1_ms"], 3), _fmt(r["added_p99_c1_ms"], 3),
            _fmt(r["added_p50_cN_ms"], 3),
            _fmt(r["ratio"], 3), _fmt(r["cpu_s_per_1k"], 4), _fmt(r["cpu_ratio"], 3),
            _fmt(r["peak_rss_mb"], 1),
            _fmt(r["ready_s"], 2)]


def stream_row(r: dict) -> list[str]:
    s = r["stream"]
    keys = ("ttfb_p50_ms", "ttfb_p99_ms", "total_p50_ms", "total_p99_ms")
    return [r["mode"], *(_fmt(s[k], 3) for k in keys), str(s["errors"])]


def print_tables(results: list[dict], connections: int) -> None:
    columns = [c.replace("c=N", f"c={connections}") for c in COLUMNS]
    streams = [r for r in results if r["status"] == "ok" and "stream" in r]
    tables = [("load (wrk)", columns, [row(r) for r in results])]
    if streams:
        tables.append(("streaming, sequential (aiohttp)", STREAM_COLUMNS,
                       [stream_row(r) for r in streams]))
    notes = [f'{r["mode"]}: {r["status"]}: {r["reason"]}' for r in results if r["status"] != "ok"]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        for title, cols, rows in tables:
            print(plain_table(title, cols, rows) + "\n")
        print("\n".join(notes))
        return
    console = Console(width=max(shutil.get_terminal_size().columns, 150))
    for title, cols, rows in tables:
        table = Table(title=title)
        for i, col in enumerate(cols):
            table.add_column(col, justify="left" if i == 0 else "right")
        for values in rows:
            table.add_row(*values)
        console.print(table)
    for note in notes:
        console.print(note, markup=False, highlight=False)


def plain_table(title: str, cols: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in column) for column in zip(cols, *rows, strict=True)]
    line = lambda values: "  ".join(str(v).rjust(w) if i else str(v).ljust(w)  # noqa: E731
                                    for i, (v, w) in enumerate(zip(values, widths, strict=True)))
    return "\n".join([title, line(cols), line(["-" * w for w in widths]), *map(line, rows)])


def write_json(path: Path, meta: dict, results: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
