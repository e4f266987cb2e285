"""The admin API's OpenAPI 3.1 document: paths written here, schemas generated from
`admin/schemas.py` (the models that also validate the requests)."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from rolegate.admin.schemas import (
    ErrorBody, KeyCreate, KeyCreated, KeyList, KeyUpdate, KeyView, UsageReport,
)

REF = "#/components/schemas/{model}"
_MODELS = (KeyCreate, KeyUpdate, KeyView, KeyCreated, KeyList, UsageReport, ErrorBody)
_ERRORS = {"400": "The body or query is invalid.", "401": "No valid credential.",
           "403": "The caller is not granted route group `admin`.",
           "404": "Not found, or the feature is not enabled."}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": REF.format(model=name)}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _operation(summary: str, ok: tuple[str, str, str], *, body: str | None = None,
               parameters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    status, schema, description = ok
    operation: dict[str, Any] = {
        "summary": summary,
        "responses": {status: _json(schema, description),
                      **{code: _json("ErrorBody", text) for code, text in _ERRORS.items()}},
    }
    if body is not None:
        operation["requestBody"] = {"required": True,
                                    "content": {"application/json": {"schema": _ref(body)}}}
    if parameters:
        operation["parameters"] = parameters
    return operation


def _metrics_operation() -> dict[str, Any]:
    plain = {"text/plain": {"schema": {"type": "string"}}}
    return {"summary": "Prometheus metrics",
            "responses": {"200": {"description": "The Prometheus text format.", "content": plain},
                          **{code: _json("ErrorBody", text)
                             for code, text in _ERRORS.items() if code != "400"}}}


def _query(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string"}}


KEY_ID = {"name": "key_id", "in": "path", "required": True, "schema": {"type": "string"}}
USAGE_PARAMETERS = [
    _query("by", "Grouping.", type="string",
           enum=["principal", "client_id", "key", "end_user", "model", "day"]),
    _query("since", "Start: 7d, 24h, 30m ago, an ISO date or date-time, or epoch seconds."),
    _query("until", "End (exclusive), in the same forms."),
    *(_query(name, f"Only rows whose {name} is this.")
      for name in ("issuer", "subject", "client_id", "key_id", "end_user", "model")),
]


def openapi_document() -> dict[str, Any]:
    _, schemas = models_json_schema([(model, "validation") for model in _MODELS],
                                    ref_template=REF)
    return {
        "openapi": "3.1.0",
        "info": {"title": "rolegate admin API", "version": "1"},
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/admin/keys": {
                "get": _operation("List keys", ("200", "KeyList", "The keys."), parameters=[
                    _query("owner", "Only this owner's keys."),
                    _query("include_revoked", "Also revoked keys.", type="boolean")]),
                "post": _operation("Create a key", ("201", "KeyCreated", "The key, shown once."),
                                   body="KeyCreate"),
            },
            "/admin/keys/{key_id}": {
                "parameters": [KEY_ID],
                "get": _operation("Get a key", ("200", "KeyView", "The key.")),
                "patch": _operation("Update a key", ("200", "KeyView", "The key as updated."),
                                    body="KeyUpdate"),
                "delete": _operation("Revoke a key", ("200", "KeyView", "The revoked key.")),
            },
            "/admin/usage": {
                "get": _operation("Usage totals", ("200", "UsageReport", "Totals per group."),
                                  parameters=USAGE_PARAMETERS),
            },
            "/admin/metrics": {
                "get": _metrics_operation(),
            },
        },
    }
