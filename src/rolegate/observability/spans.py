"""The recorded form of a trace: plain tuples, and the W3C trace context a trace continues.

The tracing hot path records these and nothing else: no SDK span object, lock, context or
span processor per span. A request's span (`RequestSpan`) is mutable while the request runs;
each child is recorded as it ends (`ChildSpan`, a tuple), and when the request's span and its
children have ended the trace is encoded in one pass (`OtlpEncoder.children`, then
`OtlpEncoder.span` for the request's). A `Trace` is the same spans as plain tuples, which
`OtlpEncoder` encodes too (its tests compare that with the SDK's encoding).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, TypeAlias

from opentelemetry.trace.span import TraceState

INTERNAL, SERVER, CLIENT = 1, 2, 3  # SpanKind, numbered as in the OTLP protobuf
# OTLP SpanFlags: whether the parent was remote is known (always, here), and if it was.
HAS_IS_REMOTE, IS_REMOTE = 0x100, 0x200

# One ended span: name, kind, span id, parent span id (0: none), OTLP flags, start and end
# (ns since the epoch), attributes, whether its status is ERROR.
SpanRecord: TypeAlias = tuple[str, int, int, int, int, int, int, dict[str, Any], bool]
# One trace's ended spans: trace id, W3C tracestate ("" when none), the spans.
Trace: TypeAlias = tuple[int, str, tuple[SpanRecord, ...]]
# An ended child of a request's span, as recorded on the event loop and encoded with the
# others when the trace ends (`OtlpEncoder.children`): its name, kind, status, flags and
# attributes encoded (`OtlpEncoder.child_block`), its span id in wire order (0: drawn then; an
# attempt's is known before, having gone upstream), start and end.
ChildSpan: TypeAlias = tuple[bytes, int, int, int]

# W3C Trace Context §3.2: version-traceid-parentid-flags. A longer header is only valid for a
# version after 00, as the OpenTelemetry propagator reads it.
_TRACEPARENT = re.compile(
    r"^[ \t]*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:(-.*)|[ \t]*)$")
_TRACEPARENT_MAX = 512
_TRACESTATE_MAX = 512


_NO_OUTCOME: tuple[tuple[int, int | None, int | None], bytes] = ((0, None, None), b"")


class RequestSpan:
    """A request's SERVER span while it is recorded, with its ended children.

    >>> RequestSpan(trace_id, span_id, 0, head, HAS_IS_REMOTE, time.time_ns())

    `head` is what each of the trace's encoded spans begins with (`OtlpEncoder.head`: the
    trace id and the caller's `tracestate`). While the request runs, its steps leave here what
    its attributes are made of (the decision, the attempt that served it); when it ends, its
    name, status and attributes are encoded into `block`.
    """

    __slots__ = ("block", "children", "decision", "end", "flags", "head", "open", "outcome",
                 "parent_id", "served", "span_id", "start", "trace_id")

    def __init__(self, trace_id: int, span_id: int, parent_id: int, head: bytes, flags: int,
                 start: int) -> None:
        self.trace_id = trace_id
        self.span_id = span_id  # in wire order, as is the parent's (`otlp.wire_id`)
        self.parent_id = parent_id  # 0: a new trace
        self.head = head
        self.flags = flags
        self.start = start
        self.end = 0  # 0 while open
        self.children: list[ChildSpan] = []  # in the order they ended
        self.open = 0  # children started and not ended (an upstream reply still streaming)
        # The last authorization's (attributes, encoded child block) and the kind of upstream
        # attempt that served the request, while the request runs; that attempt's status and
        # token counts, and their attributes encoded.
        self.decision: tuple[dict[str, Any], bytes] | None = None
        self.served: Any = None
        self.outcome: tuple[tuple[int, int | None, int | None], bytes] = _NO_OUTCOME
        self.block = b""  # name, kind, status, flags and attributes, once ended

    def traceparent(self, span_id: int) -> str:
        """The context of child `span_id` (wire order) of this sampled trace (W3C Trace
        Context §3.2)."""
        return "".join(("00-", self.head[2:18].hex(), "-", span_id.to_bytes(8, "little").hex(),
                        "-01"))


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
