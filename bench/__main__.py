"""`python -m bench`: run the benchmark modes and print/write the results."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from bench.gateways import SURFACES  # importing it registers the gateway modes
from bench.modes import DEFAULT_GATEWAY_CMD, REGISTRY, RunContext
from bench.procs import add_pinning, start_upstream, stop
from bench.report import add_comparisons, merge_rounds, print_tables, write_json
from bench.runner import Settings, run_mode
from bench.wrkrun import WrkError, wrk_version

HERE = Path(__file__).resolve().parent


def all_modes() -> list[str]:
    return [m for m in REGISTRY if m != "compare"] + ["compare"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run (10)")
    p.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured wrk seconds (1)")
    p.add_argument("--stream-requests", type=int, default=200,
                   help="sequential streaming requests for the TTFB probe (200; 0 = off)")
    p.add_argument("--rounds", type=int, default=1,
                   help="run every mode this many times, alternately in and against the "
                        "listed order; report each mode's median (1)")
    p.add_argument("--modes", default=",".join(all_modes()),
                   help=f"comma list from: {', '.join(all_modes())}")
    p.add_argument("--gateway-cmd", default=DEFAULT_GATEWAY_CMD,
                   help="format string with {config} and {port} (also {upstream}, {workdir})")
    p.add_argument("--compare", metavar="CMD", default=None,
                   help="command starting another gateway on {port}, upstream {upstream}")
    p.add_argument("--compare-auth", default=os.environ.get("BENCH_COMPARE_AUTH"),
                   help="Authorization header value for --compare (env BENCH_COMPARE_AUTH)")
    p.add_argument("--json", type=Path, default=HERE / "results" / "latest.json")
    add_pinning(p)
    args = p.parse_args(argv)
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in args.modes if m not in REGISTRY]
    if unknown:
        p.error(f"unknown modes {unknown}; known: {', '.join(all_modes())}")
    return args


# Modes measured against another gateway mode rather than `direct`: run beside it.
GATEWAY_BASELINES = {"stream": "direct-stream", "jwt-rs256-otel": "jwt-rs256",
                     "jwt-rs256-otel-1pct": "jwt-rs256",
                     "limits+usage+write-ahead": "limits+usage",
                     **{surface[0]: "jwt-rs256" for surface in SURFACES}}


def with_baselines(names: list[str]) -> list[str]:
    """Baselines first: gateway modes need direct / direct-stream to compare against."""
    needed = {"direct"} if any(n != "direct-stream" for n in names) else set()
    needed.update(baseline for name, baseline in GATEWAY_BASELINES.items() if name in names)
    return [m for m in all_modes() if m in needed or m in names]


def meta(args: argparse.Namespace) -> dict:
    return {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "duration_s": args.duration,
            "connections": args.connections, "threads": args.threads,
            "warmup_s": args.warmup, "stream_requests": args.stream_requests,
            "cpus": os.cpu_count(), "python": platform.python_version(),
            "machine": platform.machine(), "kernel": platform.release(),
            "wrk": wrk_version(), "gateway_cmd": args.gateway_cmd, "compare_cmd": args.compare,
            "load_cpus": sorted(args.load_cpus or ()),
            "gateway_cpus": sorted(args.gateway_cpus or ())}


def run(args: argparse.Namespace, workroot: Path) -> list[dict]:
    upstream, root, ready_s = start_upstream(workroot, args.load_cpus)
    try:
        ctx = RunContext(root, upstream.pid, ready_s, workroot, workroot / "jwks",
                         args.gateway_cmd, args.compare, args.compare_auth)
        cfg = Settings(args.duration, args.connections, args.threads, args.warmup,
                       args.stream_requests, args.load_cpus, args.gateway_cpus)
        names = with_baselines(args.modes)
        rounds = []
        for index in range(max(1, args.rounds)):
            # Every other round in reverse: a machine whose load drifts favours no mode.
            order = names if index % 2 == 0 else names[::-1]
            results = {name: _run_one(name, ctx, cfg) for name in order}
            rounds.append([results[name] for name in names])
        return merge_rounds(rounds)
    finally:
        stop(upstream)


def _run_one(name: str, ctx: RunContext, cfg: Settings) -> dict:
    print(f"[bench] {name} ...", file=sys.stderr, flush=True)
    result = run_mode(name, REGISTRY[name], ctx, cfg)
    if result["status"] != "ok":
        print(f"[bench] {name}: {result['status']}: {result['reason']}",
              file=sys.stderr, flush=True)
        if result.get("log_tail"):
            print(result["log_tail"], file=sys.stderr)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        info = meta(args)
    except WrkError as exc:
        print(f"[bench] {exc}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="rolegate-bench-") as tmp:
        results = run(args, Path(tmp))
    add_comparisons(results)
    print_tables(results, args.connections)
    write_json(args.json, info, results)
    print(f"[bench] wrote {args.json}", file=sys.stderr)
    return 0 if all(r["status"] != "failed" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
