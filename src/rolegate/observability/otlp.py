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

# A span's ids and times in one pack: Span.span_id (and Span.parent_span_id), 8 bytes each,
# then start_time_unix_nano and end_time_unix_nano (fixed64). Span ids are kept in wire order
# (`wire_id`): the int whose little-endian bytes are the id's, so one little-endian pack
# writes them with the times.
_IDS_TIMES = struct.Struct("<BBQBBQBQBQ")
_ID_TIMES = struct.Struct("<BBQBQBQ")
_KINDS = {kind: bytes((0x30, kind)) for kind in range(1, 6)}  # Span.kind
_SMALL = tuple(bytes((number,)) for number in range(0x80))  # one-byte varints
_FIXED32 = struct.Struct("<I").pack
_DOUBLE = struct.Struct("<d").pack
_MOST_CACHED = 8192
_MOST_LENGTH = 0x1000  # spans shorter than this (most) find their length's varint in a table
# Span.status for each outcome: unset (an empty message, as the SDK sends it) or code ERROR.
_STATUS = {False: b"\x7a\x00", True: b"\x7a\x02\x18\x02"}
_FLAGS_TAG = b"\x85\x01"  # field 16, fixed32


class OtlpEncoder:
    """>>> OtlpEncoder({"service.name": "rolegate"}, scope="rolegate").encode(traces)

    Attribute values are cached by (key, value): a key that takes both `True` and `1`
    would see one encoded as the other, so an attribute key keeps one type of value.

    `encode` takes span ids as W3C Trace Context writes them (big-endian); `span` and
    `children`, the request path's, take them in wire order (`wire_id`)."""

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
        # `uncached_attribute(key, value)`: one Span.attributes field, not looked up in the
        # cache (a request id).
        self.uncached_attribute: Callable[[str, Any], bytes] = self._attributes.uncached
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
                scope_spans.append(self.span(head, name, kind, wire_id(span_id),
                                             wire_id(parent_id), flags, start, end,
                                             self.attributes(attributes), is_error))
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
        already encoded (`attributes`, or a block kept from an earlier span); ids in wire
        order, `parent_id` 0 for none."""
        return self.framed(head, parent_id, span_id, start, end,
                           self.tail(name, kind, flags, is_error) + attributes)

    def tail(self, name: str, kind: int, flags: int, is_error: bool) -> bytes:
        """A span's name, kind, status and flags, encoded: the fields it writes after its ids
        and times (a message's fields may come in any order)."""
        tail = self._tails.get((name, kind, flags | is_error))
        if tail is None:
            tail = self._tail(name, kind, flags, is_error)
        return tail

    def child_block(self, name: str, kind: int, is_error: bool, attributes: bytes) -> bytes:
        """What a child span (`ChildSpan`) carries after its ids and times: its name, kind,
        status and flags, then its `attributes`, encoded."""
        return self.tail(name, kind, HAS_IS_REMOTE, is_error) + attributes

    def children(self, head: bytes, parent_id: int, children: Iterable[ChildSpan]) -> bytes:
        """ScopeSpans.spans fields for the ended children of span `parent_id` (wire order; 0:
        none), in the trace `head` begins, in one pass. A child recorded without an id gets
        one drawn now."""
        if not parent_id:
            return b"".join(self.framed(head, 0, span_id or self._span_id(), start, end, block)
                            for block, span_id, start, end in children)
        ids = self._ids
        pack = _IDS_TIMES.pack
        fixed = len(head) + _IDS_TIMES.size
        spans: list[bytes] = []
        for block, span_id, start, end in children:
            while not span_id:  # never all zeros (W3C Trace Context §3.2.2)
                span_id = ids(64)
            size = fixed + len(block)
            spans += (b"\x12", _LENGTHS[size] if size < _MOST_LENGTH else _varint(size), head,
                      pack(0x12, 8, span_id, 0x22, 8, parent_id, 0x39, start, 0x41, end), block)
        return b"".join(spans)

    def framed(self, head: bytes, parent_id: int, span_id: int, start: int, end: int,
               block: bytes) -> bytes:
        """One ScopeSpans.spans field: `head`, the ids (wire order; `parent_id` 0 for none)
        and times, then `block` (`tail` and the attributes)."""
        fields = (_IDS_TIMES.pack(0x12, 8, span_id, 0x22, 8, parent_id, 0x39, start, 0x41, end)
                  if parent_id else _ID_TIMES.pack(0x12, 8, span_id, 0x39, start, 0x41, end))
        size = len(head) + len(fields) + len(block)
        return b"".join((b"\x12", _LENGTHS[size] if size < _MOST_LENGTH else _varint(size), head,
                         fields, block))

    def _span_id(self) -> int:
        span_id = self._ids(64)
        while not span_id:  # never all zeros (W3C Trace Context §3.2.2)
            span_id = self._ids(64)
        return span_id

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
        self._string_prefixes: dict[tuple[str, int], bytes] = {}  # by key and text's length

    def __missing__(self, item: tuple[str, Any]) -> bytes:
        key, value = item
        if key in self._uncached:  # a request id: a short string, mostly
            return self.uncached(key, value)
        encoded = _key_value(key, value)
        if len(self) >= _MOST_CACHED:
            self.clear()
        self[item] = encoded
        return encoded

    def uncached(self, key: str, value: Any) -> bytes:
        """`value`'s field, not kept: a string's is its text after the fields before it, which
        are kept for each key and length of text."""
        if value.__class__ is not str:
            return _key_value(key, value)
        text = value.encode()
        prefix = self._string_prefixes.get((key, len(text)))
        if prefix is None:
            if len(self._string_prefixes) >= _MOST_CACHED:
                self._string_prefixes.clear()
            prefix = self._string_prefixes[key, len(text)] = _string_prefix(key, len(text))
        return prefix + text


def wire_id(span_id: int) -> int:
    """A span id as W3C Trace Context writes it (big-endian) -> in wire order, the int whose
    little-endian bytes are the same (what `OtlpEncoder.span` and `children` take)."""
    return int.from_bytes(span_id.to_bytes(8, "big"), "little")


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


def _string_prefix(key: str, length: int) -> bytes:
    """What `_key_value` writes for a string `length` bytes long before its text."""
    name = key.encode()
    value = b"\x0a" + _varint(length)  # AnyValue.string_value
    key_value = b"".join((b"\x0a", _varint(len(name)), name,
                          b"\x12", _varint(len(value) + length), value))
    return b"".join((b"\x4a", _varint(len(key_value) + length), key_value))


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


_LENGTHS = tuple(_varint(number) for number in range(_MOST_LENGTH))


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
