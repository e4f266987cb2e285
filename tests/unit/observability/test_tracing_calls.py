"""The traced provider copies an upstream call field by field (cheaper than
`dataclasses.replace`): a field added to `UpstreamCall` must not be lost on the way."""

from __future__ import annotations

import dataclasses

from rolegate.observability.tracing import _with_traceparent
from rolegate.providers.base import UpstreamCall


def test_a_call_given_a_traceparent_keeps_every_other_field():
    fields = {field.name: f"value-{field.name}" for field in dataclasses.fields(UpstreamCall)}
    call = UpstreamCall(**fields)  # type: ignore[arg-type]

    copied = _with_traceparent(call, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")

    assert copied == dataclasses.replace(
        call, traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
