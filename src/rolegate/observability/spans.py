"""`Span`: one recorded span as plain data, and the W3C trace context it continues.

The tracing hot path records these and nothing else: no SDK span object, lock, context or
span processor per span. A span is written once by the event loop while it is open and read
once, after it has ended, by the exporter's thread (`span_export.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from opentelemetry.trace.span import TraceState

INTERNAL, SERVER, CLIENT = 1, 2, 3  # SpanKind, numbered as in the OTLP protobuf
# OTLP SpanFlags: whether the parent was remote is known (always, here), and if it was.
HAS_IS_REMOTE, IS_REMOTE = 0x100, 0x200

# W3C Trace Context §3.2: version-traceid-parentid-flags. A longer header is only valid for a
# version after 00, as the OpenTelemetry propagator reads it.
_TRACEPARENT = re.compile(
    r"^[ \t]*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:(-.*)|[ \t]*)$")
_TRACEPARENT_MAX = 512
_TRACESTATE_MAX = 512


class Span:
    """A span being recorded, then handed to the exporter once `end` is set.

    >>> Span("rolegate.authorize", INTERNAL, trace_id, span_id, parent_id, "", HAS_IS_REMOTE,
    ...      time.time_ns(), {"rolegate.decision": "allow"})
    """

    __slots__ = ("attributes", "end", "finished", "flags", "is_error", "kind", "name",
                 "parent_id", "span_id", "start", "trace_id", "trace_state")

    def __init__(self, name: str, kind: int, trace_id: int, span_id: int, parent_id: int,
                 trace_state: str, flags: int, start: int, attributes: dict[str, Any]) -> None:
        self.name = name
        self.kind = kind
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_id = parent_id  # 0: a root span
        self.trace_state = trace_state
        self.flags = flags
        self.start = start
        self.end = 0  # 0 while open
        self.attributes = attributes
        self.is_error = False
        # A request's span collects its children as they end, and is exported with them.
        self.finished: list[Span] = []

    @property
    def traceparent(self) -> str:
        """This span as the parent of a sampled request (W3C Trace Context §3.2)."""
        return f"00-{self.trace_id:032x}-{self.span_id:016x}-01"


@dataclass(frozen=True, slots=True)
class RemoteParent:
    """The caller's span, from its `traceparent` (and `tracestate`) headers."""

    traceparent: str
    trace_id: int
    span_id: int
    is_sampled: bool
    trace_state: str


def remote_parent(traceparent: bytes, tracestate: bytes | None) -> RemoteParent | None:
    """The caller's span, or None for a header that is malformed (read as the OpenTelemetry
    propagator reads it: then a new trace starts, as without the header)."""
    text = traceparent.decode("latin-1")
    match = _TRACEPARENT.match(text) if len(text) <= _TRACEPARENT_MAX else None
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if trace_id == "0" * 32 or span_id == "0" * 16 or version == "ff" \
            or (version == "00" and rest):
        return None
    return RemoteParent(text, int(trace_id, 16), int(span_id, 16), bool(int(flags, 16) & 1),
                        _trace_state(tracestate))


def _trace_state(header: bytes | None) -> str:
    """The caller's `tracestate`, as OpenTelemetry's `TraceState` keeps it (W3C Trace Context
    §3.3: invalid or duplicate members drop the whole header)."""
    if header is None or len(header) > _TRACESTATE_MAX:
        return ""
    state = TraceState.from_header([header.decode("latin-1")])
    return ",".join(f"{key}={value}" for key, value in state.items())
