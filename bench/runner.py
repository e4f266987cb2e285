"""Measuring one mode: start it, wait until ready, load it with wrk, probe streaming, stop it."""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench import procstat, streamprobe
from bench.modes import Mode, ModeFactory, RunContext, Unavailable
from bench.procs import NotReady, log_tail, start, stop, wait_port, wait_ready
from bench.wrkrun import WrkError, run_wrk


@dataclass
class Settings:
    duration: float
    connections: int
    threads: int
    warmup: float
    stream_requests: int
    load_cpus: frozenset[int] | None = None     # wrk's CPUs (None: any)
    gateway_cpus: frozenset[int] | None = None  # the gateway's and its workers' (None: any)


def run_mode(name: str, factory: ModeFactory, ctx: RunContext, cfg: Settings) -> dict:
    """The result dict of one mode; status is ok, skipped or failed."""
    try:
        mode = factory(ctx)
    except Unavailable as exc:
        return {"mode": name, "status": "skipped", "reason": str(exc)}
    if mode.argv is None:  # load the upstream itself: its own numbers are the reference
        return _measure(mode, ctx.upstream_pid, ctx.upstream_ready_s, cfg, ctx.upstream_pid)
    log_path = ctx.workroot / f"{name.replace('/', '_')}.log"
    services = []
    try:
        for service in mode.services:
            services.append(start(service.argv, {}, ctx.workroot / f"{service.name}.log"))
            wait_port(service.port, services[-1])
        started = time.monotonic()
        proc = start(mode.argv, mode.env, log_path, cfg.gateway_cpus)
        try:
            ready_s = wait_ready(mode.ready_url, proc, started)
            return _measure(mode, proc.pid, ready_s, cfg, ctx.upstream_pid)
        finally:
            stop(proc)
    except (NotReady, WrkError) as exc:
        return {"mode": name, "status": "failed", "reason": str(exc),
                "log_tail": log_tail(log_path)}
    finally:
        for service in reversed(services):
            stop(service)
        for cleanup in mode.cleanups:
            cleanup()


def _measure(mode: Mode, pid: int, ready_s: float, cfg: Settings, upstream_pid: int) -> dict:
    """`cpu_s` and `cores`: the CPU the measured process tree used under load, in seconds and
    per wall second; `load_cores`: what the load side used meanwhile (wrk, and the mock
    upstream unless it is the one measured)."""
    def wrk(connections: int, threads: int, duration: float) -> dict:
        return run_wrk(mode.url, mode.wrk_script, connections=connections, threads=threads,
                       duration=duration, auth=mode.auth(), cpus=cfg.load_cpus)

    if cfg.warmup > 0:
        wrk(cfg.connections, cfg.threads, cfg.warmup)
    load_side = [upstream_pid] if upstream_pid != pid else []
    cpu_before = procstat.cpu_seconds(pid)
    load_side_before = sum(map(procstat.cpu_seconds, load_side))
    started = time.monotonic()
    load = wrk(cfg.connections, cfg.threads, cfg.duration)
    elapsed = time.monotonic() - started
    cpu = procstat.cpu_seconds(pid) - cpu_before
    upstream = sum(map(procstat.cpu_seconds, load_side)) - load_side_before
    single = wrk(1, 1, cfg.duration)
    result = {"mode": mode.name, "status": "ok", "baseline": mode.baseline, "url": mode.url,
              "wrk_script": mode.wrk_script, "load": load, "c1": single,
              "cpu_s": round(cpu, 3),
              "cpu_s_per_1k": cpu / (load["requests"] / 1000) if load["requests"] else None,
              "cores": cpu / elapsed, "load_cores": (load["cpu_s"] + upstream) / elapsed,
              "ready_s": ready_s}
    if mode.stream_probe and cfg.stream_requests > 0:
        result["stream"] = streamprobe.probe(mode.url, mode.auth(), cfg.stream_requests)
    result["peak_rss_mb"] = procstat.peak_rss_mb(pid)
    return result
