"""Metrics read at scrape time from the objects that keep the state: the issuers' key caches and
the usage recorder. Nothing is counted twice and a request pays nothing for them.

>>> registry.register(KeySetCollector(caches))
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from rolegate.accounting.recorder import Recorder
from rolegate.authn.jwks import JwksCache


class KeySetCollector(Collector):
    """`rolegate_jwks_fetches_total{issuer,outcome}`, `rolegate_jwks_keys{issuer}`,
    `rolegate_jwks_last_success_timestamp{issuer}` (seconds since the epoch)."""

    def __init__(self, caches: Sequence[JwksCache]) -> None:
        self._caches = caches

    def collect(self) -> Iterator[Metric]:
        fetches = CounterMetricFamily("rolegate_jwks_fetches", "Key set fetches (discovery "
                                      "included), by issuer and outcome.",
                                      labels=("issuer", "outcome"))
        keys = GaugeMetricFamily("rolegate_jwks_keys", "Signing keys held, by issuer.",
                                 labels=("issuer",))
        loaded = GaugeMetricFamily("rolegate_jwks_last_success_timestamp", "When the issuer's "
                                   "key set was last fetched successfully (Unix time).",
                                   labels=("issuer",))
        for cache in self._caches:
            fetches.add_metric((cache.name, "success"), cache.fetch_successes)
            fetches.add_metric((cache.name, "failure"), cache.fetch_failures)
            keys.add_metric((cache.name,), cache.key_count)
            if cache.loaded_at is not None:
                loaded.add_metric((cache.name,), cache.loaded_at)
        yield from (fetches, keys, loaded)


class UsageRecorderCollector(Collector):
    """`rolegate_usage_records_pending`, `rolegate_usage_records_spooled`,
    `rolegate_usage_database_up`, `rolegate_usage_records_dropped_total`,
    `rolegate_usage_write_failures_total`, `rolegate_usage_records_dead_lettered_total`."""

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder

    def collect(self) -> Iterator[Metric]:
        recorder = self._recorder
        yield GaugeMetricFamily("rolegate_usage_records_pending", "Usage records waiting to be "
                                "written.", value=recorder.pending)
        yield GaugeMetricFamily("rolegate_usage_records_spooled", "Usage records waiting on "
                                "disk for the database (the spool's depth).",
                                value=recorder.spooled)
        yield GaugeMetricFamily("rolegate_usage_database_up", "1 when the last write of usage "
                                "records succeeded, 0 when it failed.",
                                value=0 if recorder.last_error else 1)
        yield CounterMetricFamily("rolegate_usage_records_dropped", "Usage records dropped "
                                  "because too many were waiting.", value=recorder.dropped)
        yield CounterMetricFamily("rolegate_usage_write_failures", "Batch writes of usage "
                                  "records that failed (and were retried).",
                                  value=recorder.failed_writes)
        yield CounterMetricFamily("rolegate_usage_records_dead_lettered", "Usage records the "
                                  "database refused, set aside (usage_dead_letters).",
                                  value=recorder.dead_lettered)
