"""`OtlpEncoder`: recorded spans -> one OTLP `ExportTraceServiceRequest`, protobuf bytes.

The message a batch makes is the one the OpenTelemetry SDK's OTLP exporter makes for the same
spans (`tests/unit/observability/test_otlp.py` decodes both and compares them). The envelope
(resource, instrumentation scope) is built once with `opentelemetry-proto`'s classes; each span
is written in the protobuf wire format directly (protobuf encoding §"Message Structure"),
because building it from message objects costs 60-150 us a span here, more than the whole
request it describes. An attribute's key-value message is cached: most (key, value) pairs
repeat from request to request (model, rule, issuer, status).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans

from rolegate.observability.spans import HAS_IS_REMOTE, ChildSpan, Trace

_ID = struct.Struct(">BBQ").pack  # Span.span_id
_IDS = struct.Struct(">BBQBBQ").pack  # Span.span_id, Span.parent_span_id
_TIMES = struct.Struct("<BQBQ").pack  # start_time_unix_nano, end_time_unix_nano (fixed64)
_TIMES_SIZE = struct.calcsize("<BQBQ")
_KINDS = {kind: bytes((0x30, kind)) for kind in range(1, 6)}  # Span.kind
_SMALL = tuple(bytes((number,)) for number in range(0x80))  # one-byte varints
_FIXED32 = struct.Struct("<I").pack
_DOUBLE = struct.Struct("<d").pack
_MOST_CACHED = 8192
# Span.status for each outcome: unset (an empty message, as the SDK sends it) or code ERROR.
_STATUS = {False: b"\x7a\x00", True: b"\x7a\x02\x18\x02"}
_FLAGS_TAG = b"\x85\x01"  # field 16, fixed32


class OtlpEncoder:
    """>>> OtlpEncoder({"service.name": "rolegate"}, scope="rolegate").encode(traces)

    Attribute values are cached by (key, value): a key that takes both `True` and `1`
    would see one encoded as the other, so an attribute key keeps one type of value."""

    def __init__(self, resource: dict[str, Any], *, scope: str, resource_schema_url: str = "",
                 uncached: frozenset[str] = frozenset(),
                 ids: Callable[[int], int] | None = None) -> None:
        """`uncached`: attribute keys whose values seldom repeat (a request id); `ids(64)`
        draws a child's span id when it was recorded without one."""
        envelope = ResourceSpans(
            resource=Resource(attributes=[KeyValue(key=key, value=_any_value(value))
                                          for key, value in resource.items()]),
            schema_url=resource_schema_url)
        self._resource = envelope.SerializeToString()  # fields 1 and 3; 2 is added per batch
        self._scope = ScopeSpans(scope=InstrumentationScope(name=scope)).SerializeToString()
        self._attributes = _EncodedAttributes(uncached)
        # Span.name, kind, status and flags, by (name, kind, `flags | is_error`) (the flags'
        # low bit is never set): fields a span writes after its ids and times (a message's
        # fields may come in any order).
        self._tails: dict[tuple[str, int, int], bytes] = {}
        self._ids = ids or random.Random().getrandbits

    def encode(self, traces: Iterable[Trace]) -> bytes:
        return self.payload([self.encode_spans(traces)])

    def payload(self, spans: Iterable[bytes]) -> bytes:
        """The ExportTraceServiceRequest holding the spans of `encode_spans` fragments."""
        scope = b"".join((self._scope, *spans))
        resource_spans = b"".join((self._resource, b"\x12", _varint(len(scope)), scope))
        return b"".join((b"\x0a", _varint(len(resource_spans)), resource_spans))

    def encode_spans(self, traces: Iterable[Trace]) -> bytes:
        """The spans of `traces`, as ScopeSpans.spans fields (a fragment for `payload`)."""
        scope_spans: list[bytes] = []
        for trace_id, trace_state, spans in traces:
            head = self.head(trace_id, trace_state)
            for name, kind, span_id, parent_id, flags, start, end, attributes, is_error in spans:
                scope_spans.append(self.span(head, name, kind, span_id, parent_id, flags, start,
                                             end, self.attributes(attributes), is_error))
        return b"".join(scope_spans)

    def head(self, trace_id: int, trace_state: str) -> bytes:
        """Span.trace_id and Span.trace_state, the fields every span of one trace begins with."""
        head = b"\x0a\x10" + trace_id.to_bytes(16, "big")
        if trace_state:
            state = trace_state.encode()
            head = b"".join((head, b"\x1a", _varint(len(state)), state))
        return head

    def attributes(self, attributes: dict[str, Any]) -> bytes:
        """Span.attributes fields, one per (key, value), for `span`."""
        return b"".join(map(self._attributes.__getitem__, attributes.items()))

    def attribute_items(self, items: Iterable[tuple[str, Any]]) -> bytes:
        """`attributes`, of (key, value) pairs."""
        return b"".join(map(self._attributes.__getitem__, items))

    def span(self, head: bytes, name: str, kind: int, span_id: int, parent_id: int, flags: int,
             start: int, end: int, attributes: bytes, is_error: bool) -> bytes:
        """One ScopeSpans.spans field: a span of the trace `head` begins, with its `attributes`
        already encoded (`attributes`, or a block kept from an earlier span)."""
        # No call per field: this runs for every span the gateway records, in one join.
        tail = self._tails.get((name, kind, flags | is_error))
        if tail is None:
            tail = self._tail(name, kind, flags, is_error)
        ids = _IDS(0x12, 8, span_id, 0x22, 8, parent_id) if parent_id else _ID(0x12, 8, span_id)
        size = len(head) + len(ids) + _TIMES_SIZE + len(tail) + len(attributes)
        return b"".join((b"\x12", _SMALL[size] if size < 0x80 else _varint(size), head, ids,
                         _TIMES(0x39, start, 0x41, end), tail, attributes))

    def children(self, head: bytes, parent_id: int, children: Iterable[ChildSpan]) -> bytes:
        """ScopeSpans.spans fields for the ended children of span `parent_id` (0: none), in
        the trace `head` begins: `span` for each, inline, in one pass."""
        tails = self._tails
        ids = self._ids
        spans: list[bytes] = []
        for name, kind, span_id, start, end, attributes, is_error in children:
            tail = tails.get((name, kind, HAS_IS_REMOTE | is_error))
            if tail is None:
                tail = self._tail(name, kind, HAS_IS_REMOTE, is_error)
            while not span_id:  # never all zeros (W3C Trace Context §3.2.2)
                span_id = ids(64)
            packed = (_IDS(0x12, 8, span_id, 0x22, 8, parent_id) if parent_id
                      else _ID(0x12, 8, span_id))
            size = len(head) + len(packed) + _TIMES_SIZE + len(tail) + len(attributes)
            spans += (b"\x12", _SMALL[size] if size < 0x80 else _varint(size), head, packed,
                      _TIMES(0x39, start, 0x41, end), tail, attributes)
        return b"".join(spans)

    def _tail(self, name: str, kind: int, flags: int, is_error: bool) -> bytes:
        text = name.encode()
        tail = b"".join((b"\x2a", _varint(len(text)), text, _KINDS[kind], _STATUS[is_error],
                         _FLAGS_TAG, _FIXED32(flags)))
        if len(self._tails) >= _MOST_CACHED:
            self._tails.clear()
        self._tails[name, kind, flags | is_error] = tail
        return tail


class _EncodedAttributes(dict[tuple[str, Any], bytes]):
    """(key, value) -> Span.attributes (field 9) holding that KeyValue, encoded when first
    asked for; not kept for `uncached` keys, nor beyond `_MOST_CACHED` entries."""

    def __init__(self, uncached: frozenset[str]) -> None:
        super().__init__()
        self._uncached = uncached

    def __missing__(self, item: tuple[str, Any]) -> bytes:
        key, value = item
        if key in self._uncached:  # a request id: a short string, mostly
            return _short_string(key, value) or _key_value(key, value)
        encoded = _key_value(key, value)
        if len(self) >= _MOST_CACHED:
            self.clear()
        self[item] = encoded
        return encoded


def _key_value(key: str, value: Any) -> bytes:
    """Span.attributes (field 9) holding one KeyValue, or nothing for a value of a type an
    attribute cannot have (the SDK drops those too)."""
    encoded_value = _value(value)
    if encoded_value is None:
        return b""
    name = key.encode()
    message = b"".join((b"\x0a", _varint(len(name)), name,
                        b"\x12", _varint(len(encoded_value)), encoded_value))
    return b"".join((b"\x4a", _varint(len(message)), message))


def _short_string(key: str, value: Any) -> bytes:
    """`_key_value` of a string value when every length in it fits one byte, else b""."""
    if value.__class__ is not str:
        return b""
    name = key.encode()
    text = value.encode()
    size = len(name) + len(text) + 6  # the KeyValue: its key's field, its value's
    if size >= 0x80:
        return b""
    return b"".join((b"\x4a", _SMALL[size], b"\x0a", _SMALL[len(name)], name,
                     b"\x12", _SMALL[len(text) + 2], b"\x0a", _SMALL[len(text)], text))


def _value(value: Any) -> bytes | None:
    """An AnyValue message: its one field set (a oneof is written even when zero)."""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        text = value.encode()
        return b"".join((b"\x0a", _varint(len(text)), text))
    if isinstance(value, int):
        return b"\x18" + _varint(value & 0xFFFF_FFFF_FFFF_FFFF)  # int64: two's complement
    if isinstance(value, float):
        return b"\x21" + _DOUBLE(value)
    return None


def _varint(number: int) -> bytes:
    if number < 0x80:
        return _SMALL[number]
    if number < 0x4000:  # a span's or a string's length, mostly
        return bytes((number & 0x7F | 0x80, number >> 7))
    out = bytearray()
    while number >= 0x80:
        out.append(number & 0x7F | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


def _any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))
