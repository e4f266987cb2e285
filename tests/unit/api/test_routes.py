"""Resolving method and path to a route: exact OpenAI paths, Azure deployment paths, and nothing
else (no normalisation that could turn one path into another)."""

from __future__ import annotations

import pytest

from rolegate.errors import MethodNotAllowed, NotFound
from rolegate.api.routes import ANY_METHOD, MAX_RESOLVED, ROUTES, Operation, Router, resolve


@pytest.mark.parametrize("operation", ["chat/completions", "completions", "embeddings",
                                       "responses"])
@pytest.mark.parametrize("prefix", ["/v1/", "/"])
def test_inference_routes_with_and_without_v1(prefix, operation):
    route = resolve("POST", prefix + operation)
    assert (route.group, route.operation, route.model) == ("inference", operation, None)


@pytest.mark.parametrize("path", ["/v1/models", "/models"])
def test_model_listing_with_and_without_v1(path):
    route = resolve("GET", path)
    assert (route.group, route.operation) == ("info", "models.list")


@pytest.mark.parametrize(("path", "model"), [("/v1/models/gpt-4o", "gpt-4o"),
                                             ("/models/gpt-4o", "gpt-4o"),
                                             ("/v1/models/org/model", "org/model")])
def test_model_retrieval_names_the_model(path, model):
    route = resolve("GET", path)
    assert (route.group, route.operation, route.model) == ("info", "models.get", model)


@pytest.mark.parametrize("operation", ["chat/completions", "completions", "embeddings"])
def test_azure_deployment_route_names_the_model(operation):
    route = resolve("POST", f"/openai/deployments/gpt-4o/{operation}")
    assert (route.group, route.operation, route.model) == ("inference", operation, "gpt-4o")


def test_admin_routes():
    assert resolve("GET", "/admin/policy").operation == "admin.policy"
    unknown = resolve("DELETE", "/admin/anything")
    assert (unknown.group, unknown.operation) == ("admin", "admin.unknown")


@pytest.mark.parametrize("path", [
    "/v1//chat/completions", "//v1/chat/completions", "/v1/./models", "/v1/models/../admin/policy",
    "/v1/models/./gpt-4o", "/V1/chat/completions", "/v1/Chat/Completions", "/V1/MODELS",
    "/v1/chat/completions/", "/v1/models/", "/v1", "/", "", "/v2/chat/completions",
    "/openai/deployments//chat/completions", "/openai/deployments/gpt-4o/responses",
    "/openai/deployments/gpt-4o", "/openai/deployments/gpt-4o/chat/completions/x",
    "/openai/deployments/../chat/completions", "/v1/chat/completions%2f",
    "/v1/audio/unknown", "/ADMIN/policy",
])
def test_anything_else_is_not_found(path):
    with pytest.raises(NotFound) as caught:
        resolve("POST" if "models" not in path else "GET", path)
    assert caught.value.code == "unknown_route"
    assert caught.value.status == 404


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/chat/completions"), ("PUT", "/v1/embeddings"), ("DELETE", "/completions"),
    ("POST", "/v1/models"), ("POST", "/v1/models/gpt-4o"),
    ("GET", "/openai/deployments/x/embeddings"),
    ("POST", "/admin/policy"), ("HEAD", "/v1/models"),
])
def test_wrong_method_is_405_naming_the_right_one(method, path):
    with pytest.raises(MethodNotAllowed) as caught:
        resolve(method, path)
    assert caught.value.status == 405
    assert "use GET" in caught.value.message or "use POST" in caught.value.message


def group_by_path(path: str, method: str = "GET") -> str:
    """An oracle written apart from the table: admin paths are `admin`, the model listing and
    retrieval `info` (Gemini's listing too, its methods are inference), MCP servers `mcp`,
    console pages `console` except the forms that change keys (`admin`), the rest (OpenAI,
    Azure and Gemini inference) `inference`."""
    if path.startswith("/admin/"):
        return "admin"
    if path.startswith("/mcp/"):
        return "mcp"
    if path == "/console" or path.startswith("/console/"):
        return "admin" if path.startswith("/console/keys") and method == "POST" else "console"
    if path.removeprefix("/v1").startswith("/models") or (
            path.startswith("/v1beta/models") and ":" not in path):  # Gemini: no :method
        return "info"
    return "inference"


@pytest.mark.parametrize("spec", ROUTES, ids=lambda spec: f"{spec.method} {spec.path}")
def test_every_route_declares_the_group_its_path_belongs_to(spec):
    assert spec.group == group_by_path(spec.path, spec.method)


@pytest.mark.parametrize("spec", ROUTES, ids=lambda spec: f"{spec.method} {spec.path}")
def test_every_route_in_the_table_resolves_to_itself(spec):
    path = spec.path.format(model="some/model" if spec.path.endswith("}")
                            and not spec.path.startswith("/v1beta/") else "m",
                            key_id="key_1", rest="x/y", server="github")
    method = "PUT" if spec.method == ANY_METHOD else spec.method
    route = resolve(method, path)
    assert (route.group, route.operation, route.method) == (spec.group, spec.operation, method)


def test_admin_key_paths_name_the_key_and_refuse_other_methods():
    assert resolve("PATCH", "/admin/keys/key_1").resource == "key_1"
    assert resolve("GET", "/admin/keys/a/b").operation == "admin.unknown"
    with pytest.raises(MethodNotAllowed, match="use GET, PATCH, DELETE"):
        resolve("PUT", "/admin/keys/key_1")
    with pytest.raises(MethodNotAllowed, match="use GET, POST"):
        resolve("DELETE", "/admin/keys")


def test_an_mcp_path_names_one_server_segment():
    route = resolve("POST", "/mcp/github")
    assert (route.group, route.operation, route.resource) == ("mcp", Operation.MCP, "github")
    with pytest.raises(NotFound):
        resolve("POST", "/mcp/github/extra")


def test_a_templated_path_resolved_again_is_the_same_route_and_the_memory_is_bounded():
    router = Router()
    path = "/v1beta/models/gemini-2.0-flash:generateContent"
    first = router.resolve("POST", path)
    assert router.resolve("POST", path) == first and first.model == "gemini-2.0-flash"
    with pytest.raises(MethodNotAllowed):  # a refusal is never remembered as a route
        router.resolve("GET", path)
    with pytest.raises(MethodNotAllowed):
        router.resolve("GET", path)
    for index in range(MAX_RESOLVED + 10):
        assert router.resolve("POST", f"/v1beta/models/m{index}:generateContent").model == \
            f"m{index}"
    assert len(router._resolved) <= MAX_RESOLVED
    assert router.resolve("POST", path) == first
