"""The admin API's OpenAPI 3.1 document: paths written here; request bodies, query parameters
and responses generated from `admin/schemas.py`, the models the handlers validate with, so every
bound is stated once.

Every admin route is here with every answer it can give (errors OpenAI-shaped), and the key
created by `POST /admin/keys` links to the operations on it, for stateful API testing.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from rolegate.admin.schemas import (
    ErrorBody, KeyCreate, KeyCreated, KeyList, KeyQuery, KeyUpdate, KeyView, UsageParams,
    UsageReport,
)
from rolegate.config.model import USAGE_GROUPINGS

REF = "#/components/schemas/{model}"
_BODIES = (KeyCreate, KeyUpdate)
_RESPONSES = (KeyView, KeyCreated, KeyList, UsageReport, ErrorBody)
_ERRORS = {"400": "The body or query is invalid.", "401": "No valid credential.",
           "403": "The caller is not granted route group `admin`.",
           "404": "Not found, or the feature is not enabled.",
           "405": "The path does not take this method (`Allow` lists those it takes).",
           "413": "The request body is too large."}
_ALLOW = {"Allow": {"description": "The methods the path takes.",
                    "schema": {"type": "string"}}}
KEY_ID = {"name": "key_id", "in": "path", "required": True,
          "description": "The key's id (`key_…`), as `POST /admin/keys` answered.",
          "schema": {"type": "string", "minLength": 1}}
_KEY_LINKS = {f"{verb}Key": {"operationId": f"{verb}Key",
                             "parameters": {"key_id": "$response.body#/id"}}
              for verb in ("get", "update", "revoke")}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": REF.format(model=name)}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _errors(*codes: str) -> dict[str, Any]:
    answers = {code: _json("ErrorBody", _ERRORS[code]) for code in ("401", "403", "405", *codes)}
    answers["405"]["headers"] = _ALLOW
    return answers


def _operation(operation_id: str, summary: str, ok: tuple[str, str, str], *errors: str,
               body: str | None = None, query: type[BaseModel] | None = None
               ) -> dict[str, Any]:
    status, schema, description = ok
    operation: dict[str, Any] = {
        "operationId": operation_id, "summary": summary,
        "responses": {status: _json(schema, description), **_errors(*errors)},
    }
    if body is not None:
        operation["requestBody"] = {"required": True,
                                    "content": {"application/json": {"schema": _ref(body)}}}
    if query is not None:
        operation["parameters"] = query_parameters(query)
    return operation


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The OpenAPI parameters of a query model: each optional, its schema the model's."""
    schema = model.model_json_schema()
    parameters = []
    for name, prop in schema["properties"].items():
        prop = {key: value for key, value in prop.items() if key != "title"}
        description = prop.pop("description", "")
        branches = [branch for branch in prop.pop("anyOf", []) if branch != {"type": "null"}]
        if branches:  # `X | None`: absent is None; the parameter itself is X
            prop = {**branches[0], **{k: v for k, v in prop.items() if k != "default"}}
        parameters.append({"name": name, "in": "query", "required": False,
                           "description": description, "schema": prop})
    return parameters


def _text(summary: str, description: str, media: str) -> dict[str, Any]:
    return {"operationId": summary, "summary": description,
            "responses": {"200": {"description": description,
                                  "content": {media: {"schema": {"type": "string"}}}},
                          **_errors("404")}}


def _usage_parameters(dimensions: tuple[str, ...]) -> list[dict[str, Any]]:
    """UsageParams' parameters, `by` listing exactly the groupings this gateway accepts: the
    built-in ones and the configured `accounting.dimensions`."""
    parameters = query_parameters(UsageParams)
    for parameter in parameters:
        if parameter["name"] == "by":
            parameter["schema"] = {"type": "string", "default": "principal",
                                   "enum": [*USAGE_GROUPINGS, *dimensions]}
    return parameters


def openapi_document(dimensions: tuple[str, ...] = ()) -> dict[str, Any]:
    """The document; `dimensions` are the configured usage dimensions (`by` values)."""
    _, bodies = models_json_schema([(model, "validation") for model in _BODIES],
                                   ref_template=REF)
    _, replies = models_json_schema([(model, "serialization") for model in _RESPONSES],
                                    ref_template=REF)
    schemas = {**replies.get("$defs", {}), **bodies.get("$defs", {})}
    created = _operation("createKey", "Create a key",
                         ("201", "KeyCreated", "The key, shown once."), "400", "404", "413",
                         body="KeyCreate")
    created["responses"]["201"]["links"] = _KEY_LINKS
    return {
        "openapi": "3.1.0",
        "info": {"title": "rolegate admin API", "version": "1"},
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/admin/keys": {
                "get": _operation("listKeys", "List keys", ("200", "KeyList", "The keys."),
                                  "400", "404", query=KeyQuery),
                "post": created,
            },
            "/admin/keys/{key_id}": {
                "parameters": [KEY_ID],
                "get": _operation("getKey", "Get a key", ("200", "KeyView", "The key."), "404"),
                "patch": _operation("updateKey", "Update a key",
                                    ("200", "KeyView", "The key as updated."),
                                    "400", "404", "413", body="KeyUpdate"),
                "delete": _operation("revokeKey", "Revoke a key",
                                     ("200", "KeyView", "The revoked key."), "404"),
            },
            "/admin/usage": {
                "get": {**_operation("usageReport", "Usage totals",
                                     ("200", "UsageReport", "Totals per group."), "400", "404"),
                        "parameters": _usage_parameters(dimensions)},
            },
            "/admin/policy": {
                "get": {"operationId": "policy",
                        "summary": "The effective issuers, models and rules (no secrets)",
                        "responses": {"200": {"description": "The policy.", "content": {
                            "application/json": {"schema": {"type": "object"}}}},
                            **_errors()}},
            },
            "/admin/metrics": {"get": _text("metrics", "Prometheus metrics", "text/plain")},
            "/admin/openapi.json": {
                "get": {"operationId": "openapi", "summary": "This document",
                        "responses": {"200": {"description": "The OpenAPI document.",
                                              "content": {"application/json": {
                                                  "schema": {"type": "object"}}}},
                                      **_errors()}},
            },
        },
    }
