"""Metrics of `rolegate serve --workers N`: every worker writes its metric values to files in one
directory the parent made for this serve (prometheus-client's multiprocess mode, switched on by
`PROMETHEUS_MULTIPROC_DIR`, which the parent exports before the workers start), and `/metrics`
from any worker reads them all, so every count is summed over the workers.

The collectors read at scrape time (`collectors.py`: key sets, usage recorder) hold each worker's
own state, which another worker cannot read: `StateMirror` copies them into multiprocess values
every MIRROR_INTERVAL seconds and before each scrape. Counters are carried over by their increase
since the last copy (so they sum over workers, dead ones included); each gauge gets the
multiprocess mode that answers its question: records waiting are summed over the live workers,
key counts and last-fetch times are the lowest of the live workers (the worker furthest behind
shows). A worker that exits is marked dead, so its gauges stop counting.

>>> scrape = multiprocess_exposition(metrics_dir, mirror)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, values
from prometheus_client.exposition import generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

MIRROR_INTERVAL = 1.0  # seconds between copies of a worker's scrape-time state
GaugeMode = Literal["livesum", "livemin", "livemax", "liveall", "sum", "min", "max", "all",
                    "mostrecent", "livemostrecent"]
# How each scrape-time gauge combines over workers; one not named here is summed (live ones).
GAUGE_MODES: dict[str, GaugeMode] = {
    "rolegate_usage_records_pending": "livesum",
    "rolegate_jwks_keys": "livemin",
    "rolegate_jwks_last_success_timestamp": "livemin",
}


class _ProcessId:
    """This process's id, read once and again in a child after a fork. prometheus-client's
    multiprocess values ask for it on every update, to notice a fork; `os.getpid()` is a system
    call on this libc, ten of them a request."""

    def __init__(self) -> None:
        self.value = os.getpid()
        os.register_at_fork(after_in_child=self._refresh)

    def _refresh(self) -> None:
        self.value = os.getpid()

    def __call__(self) -> int:
        return self.value


def use_multiprocess_values() -> None:
    """Make every metric built from now on write its values to this process's files in
    `PROMETHEUS_MULTIPROC_DIR` (as prometheus-client does when that variable was set before it
    was imported), finding the process's id without a system call per update. Call it before
    the first metric of a worker is built: values built before it keep their own file handles."""
    values.ValueClass = values.MultiProcessValue(  # type: ignore[no-untyped-call]
        process_identifier=_ProcessId())


class StateMirror:
    """Copies scrape-time collectors into multiprocess metric values (see the module's
    docstring); `copy` is cheap (a handful of values) and runs on the event loop."""

    def __init__(self, collectors: Iterable[Collector]) -> None:
        self._collectors = list(collectors)
        self._registry = CollectorRegistry()  # holds the mirrors; never scraped itself
        self._counters: dict[str, Counter] = {}
        self._gauges: dict[str, Gauge] = {}
        self._seen: dict[tuple[str, tuple[str, ...]], float] = {}

    async def copy(self) -> None:
        self.copy_now()

    def copy_now(self) -> None:
        for collector in self._collectors:
            for family in collector.collect():
                for sample in family.samples:
                    if family.type == "counter" and sample.name.endswith("_total"):
                        self._count(family, sample.labels, sample.value)
                    elif family.type == "gauge":
                        gauge = self._gauge(family, tuple(sample.labels))
                        (gauge.labels(**sample.labels) if sample.labels else gauge).set(
                            sample.value)

    def _count(self, family: Any, labels: dict[str, str], value: float) -> None:
        counter = self._counters.get(family.name)
        if counter is None:
            counter = self._counters[family.name] = Counter(
                family.name, family.documentation, tuple(labels), registry=self._registry)
        key = (family.name, tuple(labels.values()))
        increase = value - self._seen.get(key, 0.0)
        if increase > 0:
            (counter.labels(**labels) if labels else counter).inc(increase)
            self._seen[key] = value

    def _gauge(self, family: Any, labels: tuple[str, ...]) -> Gauge:
        gauge = self._gauges.get(family.name)
        if gauge is None:
            gauge = self._gauges[family.name] = Gauge(
                family.name, family.documentation, labels, registry=self._registry,
                multiprocess_mode=GAUGE_MODES.get(family.name, "livesum"))
        return gauge


def multiprocess_exposition(metrics_dir: Path, mirror: StateMirror) -> Callable[[], bytes]:
    """Every worker's metrics, summed as their modes say, in the Prometheus text format."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics_dir))  # type: ignore[no-untyped-call]

    def scrape() -> bytes:
        mirror.copy_now()  # this worker's own state as of now; the others' as of their last copy
        return generate_latest(registry)
    return scrape


def marking_dead(metrics_dir: Path) -> Callable[[], Any]:
    """A shutdown hook: this worker's live gauges stop counting once it exits."""
    async def mark() -> None:
        mark_process_dead(os.getpid(), str(metrics_dir))  # type: ignore[no-untyped-call]
    return mark
