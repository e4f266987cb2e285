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

import struct
from collections.abc import Iterable
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans

from rolegate.observability.spans import Span

_FIXED64 = struct.Struct("<Q").pack
_FIXED32 = struct.Struct("<I").pack
_DOUBLE = struct.Struct("<d").pack
_MOST_CACHED = 8192
# Span.status for each outcome: unset (an empty message, as the SDK sends it) or code ERROR.
_STATUS = {False: b"\x7a\x00", True: b"\x7a\x02\x18\x02"}
_FLAGS_TAG = b"\x85\x01"  # field 16, fixed32


class OtlpEncoder:
    """>>> OtlpEncoder({"service.name": "rolegate"}, scope="rolegate").encode(spans)"""

    def __init__(self, resource: dict[str, Any], *, scope: str,
                 resource_schema_url: str = "") -> None:
        envelope = ResourceSpans(
            resource=Resource(attributes=[KeyValue(key=key, value=_any_value(value))
                                          for key, value in resource.items()]),
            schema_url=resource_schema_url)
        self._resource = envelope.SerializeToString()  # fields 1 and 3; 2 is added per batch
        self._scope = ScopeSpans(scope=InstrumentationScope(name=scope)).SerializeToString()
        self._attributes: dict[tuple[str, type, Any], bytes] = {}

    def encode(self, spans: Iterable[Span]) -> bytes:
        scope_spans = [self._scope]
        for span in spans:
            body = self._span(span)
            scope_spans += (b"\x12", _varint(len(body)), body)
        scope = b"".join(scope_spans)
        resource_spans = b"".join((self._resource, b"\x12", _varint(len(scope)), scope))
        return b"".join((b"\x0a", _varint(len(resource_spans)), resource_spans))

    def _span(self, span: Span) -> bytes:
        name = span.name.encode()
        parts = [b"\x0a\x10", span.trace_id.to_bytes(16, "big"),
                 b"\x12\x08", span.span_id.to_bytes(8, "big")]
        if span.trace_state:
            state = span.trace_state.encode()
            parts += (b"\x1a", _varint(len(state)), state)
        if span.parent_id:
            parts += (b"\x22\x08", span.parent_id.to_bytes(8, "big"))
        parts += (b"\x2a", _varint(len(name)), name, b"\x30", _varint(span.kind),
                  b"\x39", _FIXED64(span.start), b"\x41", _FIXED64(span.end))
        cache = self._attributes
        for key, value in span.attributes.items():
            cache_key = (key, value.__class__, value)
            encoded = cache.get(cache_key)
            if encoded is None:
                encoded = _key_value(key, value)
                if len(cache) >= _MOST_CACHED:  # a value seen once (a request id) is not kept
                    cache.clear()
                cache[cache_key] = encoded
            parts.append(encoded)
        parts += (_STATUS[span.is_error], _FLAGS_TAG, _FIXED32(span.flags))
        return b"".join(parts)


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
        return bytes((number,))
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
