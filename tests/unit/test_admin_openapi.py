"""The admin API's OpenAPI document covers every admin route with every answer it can give, and
states the bounds the handlers enforce, which are the storage's own."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from rolegate.admin.openapi import openapi_document
from rolegate.admin.schemas import MAX_COUNT, MAX_NAME
from rolegate.storage.tables import api_keys, usage

ROUTES = [("/admin/keys", "get"), ("/admin/keys", "post"), ("/admin/keys/{key_id}", "get"),
          ("/admin/keys/{key_id}", "patch"), ("/admin/keys/{key_id}", "delete"),
          ("/admin/usage", "get"), ("/admin/policy", "get"), ("/admin/metrics", "get"),
          ("/admin/openapi.json", "get")]


@pytest.fixture(scope="module")
def document():
    document = openapi_document()
    validate(document)
    return document


def test_every_admin_route_is_documented_and_nothing_else(document):
    documented = [(path, method) for path, item in document["paths"].items()
                  for method in item if method != "parameters"]

    assert sorted(documented) == sorted(ROUTES)


@pytest.mark.parametrize(("path", "method"), ROUTES)
def test_every_operation_states_its_errors_in_the_openai_shape(document, path, method):
    responses = document["paths"][path][method]["responses"]
    takes_body = method in ("post", "patch")

    expected = {"401", "403", "405"} | ({"400", "413"} if takes_body else set())
    assert expected <= set(responses)
    for code in expected:
        schema = responses[code]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorBody"}
    assert "Allow" in responses["405"]["headers"]


def test_a_created_key_links_to_the_operations_on_it(document):
    links = document["paths"]["/admin/keys"]["post"]["responses"]["201"]["links"]
    operations = {operation["operationId"] for item in document["paths"].values()
                  for name, operation in item.items() if name != "parameters"}

    assert {link["operationId"] for link in links.values()} == {"getKey", "updateKey",
                                                                 "revokeKey"}
    assert {link["operationId"] for link in links.values()} <= operations
    assert all(link["parameters"] == {"key_id": "$response.body#/id"}
               for link in links.values())


def test_the_bounds_stated_are_the_columns_and_json(document):
    schemas = document["components"]["schemas"]
    create, limits = schemas["KeyCreate"]["properties"], schemas["KeyLimits"]["properties"]
    usage_filters = {parameter["name"]: parameter["schema"] for parameter in
                     document["paths"]["/admin/usage"]["get"]["parameters"]}

    assert create["name"]["maxLength"] == api_keys.c.name.type.length == MAX_NAME
    assert create["owner"]["maxLength"] == api_keys.c.owner.type.length
    assert create["owner"]["not"] == {"pattern": "[\\x00-\\x1f\\x7f-\\x9f]"}
    assert create["roles"]["items"]["maxLength"] == MAX_NAME
    assert limits["rpm"]["anyOf"][0] == {"type": "integer", "exclusiveMinimum": 0,
                                         "maximum": MAX_COUNT}
    assert MAX_COUNT == 2**53 - 1
    assert limits["monthly_budget_usd"]["anyOf"][0]["maximum"] == 1e12
    assert usage_filters["model"]["maxLength"] == usage.c.model.type.length
    assert usage_filters["key_id"]["maxLength"] == usage.c.key_id.type.length


def test_a_patch_documents_null_only_where_it_clears_a_field(document):
    update = document["components"]["schemas"]["KeyUpdate"]["properties"]
    nullable = {name for name, prop in update.items()
                if {"type": "null"} in prop.get("anyOf", [])}

    assert nullable == {"models", "limits", "expires_at"}
    assert all("default" not in update[name] for name in ("name", "owner", "roles", "scopes"))


def test_usage_by_lists_the_built_in_groupings_and_the_configured_dimensions():
    document = openapi_document(("tid", "groups"))
    validate(document)
    by = next(parameter for parameter in document["paths"]["/admin/usage"]["get"]["parameters"]
              if parameter["name"] == "by")

    assert by["schema"]["enum"] == ["principal", "client_id", "key", "end_user", "model", "day",
                                    "tid", "groups"]
