"""The standard OpenTelemetry environment variables, read into the `tracing` section.

Only the ones rolegate's OTLP/HTTP trace export uses (OpenTelemetry SDK environment variable
specification): `OTEL_SDK_DISABLED`, `OTEL_TRACES_EXPORTER` (`otlp` or `none`),
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the full URL) or `OTEL_EXPORTER_OTLP_ENDPOINT` (the base,
to which `/v1/traces` is added), `OTEL_EXPORTER_OTLP_[TRACES_]HEADERS` (`k=v,k2=v2`, values
percent-encoded), `OTEL_SERVICE_NAME`, and `OTEL_TRACES_SAMPLER_ARG` with a `traceidratio`
sampler. An endpoint or `OTEL_TRACES_EXPORTER=otlp` turns tracing on. A field the
configuration file sets is never overridden.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

_RATIO_SAMPLERS = ("traceidratio", "parentbased_traceidratio")


def with_otel_environment(section: Any, environ: Mapping[str, str]) -> Any:
    """The `tracing` section with the fields it leaves unset taken from `environ`."""
    found = _from_environment(environ)
    if not found or not isinstance(section, dict | None):
        return section
    return {**found, **(section or {})}


def _from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if endpoint:
        found["endpoint"] = endpoint
    elif base:
        found["endpoint"] = base.rstrip("/") + "/v1/traces"
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none" or environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        found["enabled"] = False
    elif exporter == "otlp" or "endpoint" in found:
        found["enabled"] = True
    headers = (environ.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
               or environ.get("OTEL_EXPORTER_OTLP_HEADERS"))
    if headers:
        found["headers"] = _headers(headers)
    if environ.get("OTEL_SERVICE_NAME"):
        found["service_name"] = environ["OTEL_SERVICE_NAME"]
    sampler = environ.get("OTEL_TRACES_SAMPLER", "").strip().lower()
    if sampler in _RATIO_SAMPLERS and environ.get("OTEL_TRACES_SAMPLER_ARG"):
        found["sample_ratio"] = environ["OTEL_TRACES_SAMPLER_ARG"]  # validated as the file's
    return found


def _headers(text: str) -> dict[str, str]:
    pairs = (item.split("=", 1) for item in text.split(",") if "=" in item)
    return {unquote(name).strip(): unquote(value).strip() for name, value in pairs}
