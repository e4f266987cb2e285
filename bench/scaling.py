"""`python -m bench.scaling`: what `rolegate serve --workers N` gains, one mode measured with one
worker and with N, alternately, in one run.

    python -m bench.scaling --mode jwt-rs256 --workers 2 --duration 6 --rounds 3

With one worker, the load side (wrk and the mock upstream) runs on `--load-cpus` (default: the
last CPU) and the worker on the other CPUs, so it has a core that the load side does not use:
the most one worker can do here. With N workers every process may run on every CPU: on a
machine with no CPU to spare the workers share the load side's. For each count the table gives
req/s, the cores the gateway used (its CPU seconds over the run's wall seconds), the cores the
load side used, and requests per gateway core-second. Two figures compare N workers with one:

- `throughput`: req/s with N workers over req/s with one, as measured on this machine;
- `per core`: requests per gateway core-second with N over with one (the scaling efficiency).
  With cores of their own, free of the load side, N workers would serve about
  N x `per core` x (one worker's req/s per core) — what `throughput` approaches on a machine
  where the load generator runs elsewhere.

Each count's figures are those of its median round by req/s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import bench.gateways  # noqa: F401  (importing it registers the gateway modes)
from bench.modes import DEFAULT_GATEWAY_CMD, REGISTRY, RunContext
from bench.procs import add_pinning, start_upstream, stop
from bench.report import plain_table
from bench.runner import Settings, run_mode

HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.scaling", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", default="jwt-rs256", choices=[m for m in REGISTRY
                                                           if m not in ("direct", "compare")])
    p.add_argument("--workers", type=int, default=2, help="the worker count against one (2)")
    p.add_argument("--duration", type=float, default=6.0, help="seconds per wrk run (6)")
    p.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured wrk seconds (1)")
    p.add_argument("--rounds", type=int, default=3, help="runs of each count (3)")
    p.add_argument("--gateway-cmd", default=DEFAULT_GATEWAY_CMD,
                   help="as python -m bench's; `--workers N` is appended")
    p.add_argument("--json", type=Path, default=HERE / "results" / "scaling.json")
    add_pinning(p)
    args = p.parse_args(argv)
    cpus = sorted(os.sched_getaffinity(0))
    if args.load_cpus is None:
        args.load_cpus = frozenset(cpus[-1:])
    if args.gateway_cpus is None:  # one worker: the CPUs the load side leaves
        args.gateway_cpus = frozenset(cpus) - args.load_cpus or frozenset(cpus)
    return args


def measure(args: argparse.Namespace, workroot: Path) -> dict[int, list[dict]]:
    upstream, root, ready_s = start_upstream(workroot, args.load_cpus)
    counts = [1, args.workers]
    everywhere = frozenset(os.sched_getaffinity(0))
    runs: dict[int, list[dict]] = {count: [] for count in counts}
    try:
        for index in range(max(1, args.rounds)):
            for count in counts if index % 2 == 0 else counts[::-1]:
                print(f"[bench] {args.mode} --workers {count} ...", file=sys.stderr, flush=True)
                ctx = RunContext(root, upstream.pid, ready_s, workroot, workroot / "jwks",
                                 f"{args.gateway_cmd} --workers {count}")
                # One worker: it and the load side on CPUs of their own. More: every process
                # anywhere (the scheduler spreads them; pinned, the load side would compete
                # with one worker only).
                load_cpus = args.load_cpus if count == 1 else everywhere
                os.sched_setaffinity(upstream.pid, load_cpus)
                cfg = Settings(args.duration, args.connections, args.threads, args.warmup, 0,
                               load_cpus, args.gateway_cpus if count == 1 else None)
                result = run_mode(args.mode, REGISTRY[args.mode], ctx, cfg)
                if result["status"] != "ok":
                    raise SystemExit(f"[bench] {args.mode} --workers {count}: "
                                     f"{result['status']}: {result.get('reason')}")
                runs[count].append(result)
    finally:
        stop(upstream)
    return runs


def summary(runs: dict[int, list[dict]]) -> dict:
    """Each count's median round (by req/s) and the two ratios of N workers to one."""
    rows = {}
    for count, results in runs.items():
        median = sorted(results, key=lambda r: r["load"]["rps"])[len(results) // 2]
        rps = median["load"]["rps"]
        rows[count] = {"workers": count, "rps": rps, "cores": median["cores"],
                       "load_cores": median["load_cores"], "rps_per_core": rps / median["cores"],
                       "cpu_s_per_1k": median["cpu_s_per_1k"],
                       "p99_ms": median["load"]["p99_us"] / 1e3,
                       "rounds_rps": [r["load"]["rps"] for r in results],
                       "rounds_per_core": [r["load"]["rps"] / r["cores"] for r in results]}
    one, many = rows[min(rows)], rows[max(rows)]
    return {"rows": list(rows.values()),
            "throughput": many["rps"] / one["rps"],
            "per_core": many["rps_per_core"] / one["rps_per_core"],
            "per_core_spread": statistics.pstdev(many["rounds_per_core"]) / many["rps_per_core"]}


def print_summary(mode: str, result: dict) -> None:
    columns = ["workers", "req/s", "gateway cores", "load cores", "req/s per core",
               "CPU s/1k", "p99 ms", "rounds req/s"]
    rows = [[str(r["workers"]), f'{r["rps"]:,.0f}', f'{r["cores"]:.2f}', f'{r["load_cores"]:.2f}',
             f'{r["rps_per_core"]:,.0f}', f'{r["cpu_s_per_1k"]:.4f}', f'{r["p99_ms"]:.2f}',
             " ".join(f"{rps:,.0f}" for rps in r["rounds_rps"])] for r in result["rows"]]
    print(plain_table(f"{mode}: workers", columns, rows))
    print(f"throughput, {result['rows'][-1]['workers']} workers / 1: {result['throughput']:.2f}x")
    print(f"per gateway core, {result['rows'][-1]['workers']} workers / 1: "
          f"{result['per_core']:.2f}x")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rolegate-bench-") as tmp:
        runs = measure(args, Path(tmp))
    result = summary(runs)
    print_summary(args.mode, result)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "meta": {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "mode": args.mode,
                 "duration_s": args.duration, "connections": args.connections,
                 "rounds": args.rounds, "load_cpus": sorted(args.load_cpus),
                 "one_worker_cpus": sorted(args.gateway_cpus), "cpus": os.cpu_count()},
        "summary": result, "runs": {str(k): v for k, v in runs.items()}}, indent=2) + "\n")
    print(f"[bench] wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
