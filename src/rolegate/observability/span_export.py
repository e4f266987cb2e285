"""`SpanExport`: finished traces, already encoded, queued by the event loop and sent in
batches by a thread.

The request path only appends a trace's encoded spans (`OtlpEncoder.span` fragments, bytes)
to a bounded queue (a `deque`, whose append is atomic): it never waits on the exporter. When
the queue is full the trace is dropped and counted, and the count is logged by the exporter's
thread. That thread wakes when `batch_traces` are queued, or every `interval` seconds, and
sends what is queued in one request, as the SDK's `BatchSpanProcessor` batches. Bytes are not
tracked by the garbage collector, so traces waiting for a batch cost its collections nothing.
`close` exports what is still queued.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Protocol

import urllib3

from rolegate.observability.otlp import OtlpEncoder

log = logging.getLogger("rolegate.tracing")

# OTLP/HTTP §"Failures": these statuses are worth retrying, with exponential backoff.
_RETRYABLE = frozenset({429, 502, 503, 504})


class BatchSender(Protocol):
    def send(self, payload: bytes) -> None: ...
    def close(self) -> None: ...


class OtlpHttpSender:
    """POSTs encoded batches to an OTLP/HTTP traces endpoint, retrying transient failures
    until `timeout` has passed.

    >>> OtlpHttpSender("http://collector:4318/v1/traces", {}, timeout=10.0).send(payload)
    """

    def __init__(self, endpoint: str, headers: Mapping[str, str], *, timeout: float) -> None:
        self._endpoint = endpoint
        self._headers = {**headers, "Content-Type": "application/x-protobuf"}
        self._timeout = timeout
        self._pool = urllib3.PoolManager(retries=False)

    def send(self, payload: bytes) -> None:
        deadline = time.monotonic() + self._timeout
        backoff = 1.0
        while True:
            left = deadline - time.monotonic()
            try:
                reply = self._pool.request("POST", self._endpoint, body=payload,
                                           headers=self._headers,
                                           timeout=urllib3.Timeout(total=max(left, 0.1)))
            except urllib3.exceptions.HTTPError as error:
                problem = f"{type(error).__name__}: {error}"
                is_retryable = True
            else:
                if reply.status < 300:
                    return
                problem = f"HTTP {reply.status}"
                is_retryable = reply.status in _RETRYABLE
            if not is_retryable or time.monotonic() + backoff > deadline:
                log.warning("trace export to %s failed: %s", self._endpoint, problem)
                return
            time.sleep(backoff)
            backoff *= 2

    def close(self) -> None:
        self._pool.clear()


class SpanExport:
    """>>> export = SpanExport(encoder, OtlpHttpSender(...)); export.put(encoder.span(...))"""

    def __init__(self, encoder: OtlpEncoder, sender: BatchSender, *,
                 batch_traces: int = 512, max_queued_traces: int = 4096,
                 interval: float = 5.0) -> None:
        self._encoder = encoder
        self._sender = sender
        self._batch = batch_traces
        self._max_queued = max_queued_traces
        self._interval = interval
        self._queue: deque[bytes] = deque()
        self._wake = threading.Event()
        self._is_closing = False
        self.dropped = 0  # traces dropped because the queue was full
        self._reported_dropped = 0
        self._thread = threading.Thread(target=self._run, name="rolegate-span-export",
                                        daemon=True)
        self._thread.start()

    def put(self, spans: bytes) -> None:
        """Queue one ended trace's encoded spans (the request path: never blocks)."""
        queued = len(self._queue)
        if queued >= self._max_queued:
            self.dropped += 1
            return
        self._queue.append(spans)
        if queued + 1 == self._batch:
            self._wake.set()

    @property
    def queued(self) -> int:
        """Traces waiting for the export thread."""
        return len(self._queue)

    def close(self, timeout: float = 30.0) -> None:
        """Export what is queued, then stop the thread (blocking: call it off the loop)."""
        self._is_closing = True
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        due = time.monotonic() + self._interval
        while not self._is_closing:
            self._wake.wait(max(due - time.monotonic(), 0))
            self._wake.clear()
            is_due = time.monotonic() >= due
            self._export_queued(is_due)
            if is_due:
                due = time.monotonic() + self._interval
        self._export_queued(True)
        self._sender.close()

    def _export_queued(self, is_due: bool) -> None:
        """Send every full batch queued; when `is_due`, what is left too."""
        queue = self._queue
        while len(queue) >= self._batch or (is_due and queue):
            batch = [queue.popleft() for _ in range(min(self._batch, len(queue)))]
            self._sender.send(self._encoder.payload(batch))
        self._report_dropped()

    def _report_dropped(self) -> None:
        if self.dropped != self._reported_dropped:
            log.warning("%d traces dropped since the last export: the export queue was full "
                        "(%d traces)", self.dropped - self._reported_dropped, self._max_queued)
            self._reported_dropped = self.dropped
