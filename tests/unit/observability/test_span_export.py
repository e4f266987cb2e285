"""The export queue: batches of at most `batch_traces`, a full queue drops (and counts) rather
than blocks, and closing exports what is still queued."""

from __future__ import annotations

import threading
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from rolegate.observability.otlp import OtlpEncoder
from rolegate.observability.span_export import SpanExport
from rolegate.observability.spans import HAS_IS_REMOTE, SERVER


class HeldSender:
    """Records each payload; holds the export thread until `release` is set."""

    def __init__(self) -> None:
        self.payloads: list[bytes] = []
        self.release = threading.Event()
        self.is_closed = False

    def send(self, payload: bytes) -> None:
        self.release.wait(10)
        self.payloads.append(payload)

    def close(self) -> None:
        self.is_closed = True

    def request_ids(self) -> list[str]:
        return [item.value.string_value
                for payload in self.payloads
                for resource in ExportTraceServiceRequest.FromString(payload).resource_spans
                for scope in resource.scope_spans for span in scope.spans
                for item in span.attributes if item.key == "rolegate.request_id"]


ENCODER = OtlpEncoder({}, scope="rolegate")


def trace(number: int) -> bytes:
    return ENCODER.encode_spans([(number + 1, "", (("GET", SERVER, number + 1, 0, HAS_IS_REMOTE,
                                                    10, 20, {"rolegate.request_id": f"r{number}"},
                                                    False),))])


def test_closing_exports_every_queued_trace_in_batches():
    sender = HeldSender()
    sender.release.set()
    export = SpanExport(ENCODER, sender, batch_traces=3,
                        interval=60.0)

    for number in range(7):
        export.put(trace(number))
    export.close()

    assert sender.request_ids() == [f"r{number}" for number in range(7)]
    assert len(sender.payloads) >= 3  # 7 traces, at most 3 a batch
    assert sender.is_closed and export.dropped == 0


def test_a_full_queue_drops_traces_and_counts_them_without_blocking():
    sender = HeldSender()  # the thread is held in its first export
    export = SpanExport(ENCODER, sender, batch_traces=1,
                        max_queued_traces=2, interval=60.0)
    export.put(trace(0))  # taken by the thread, which then waits in `send`
    deadline = time.monotonic() + 10
    while export.queued and time.monotonic() < deadline:
        time.sleep(0.001)

    for number in range(1, 6):
        export.put(trace(number))
    sender.release.set()
    export.close()

    assert export.dropped == 3
    assert sender.request_ids() == ["r0", "r1", "r2"]
