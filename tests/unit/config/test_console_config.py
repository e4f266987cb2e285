"""`console.path`: where the console is served, never over the gateway's own routes."""

from __future__ import annotations

from typing import Any

import pytest

from rolegate.api.routes import Operation, Router
from rolegate.config.load import ConfigError, validate_settings


def config(**console: Any) -> dict[str, Any]:
    return {
        "models": [{"name": "echo", "provider": "mock"}],
        "auth": {"dev_issuer": {"enabled": True}},
        "console": console,
        "policy": [{"name": "users", "when": {"roles": ["user"]},
                    "allow": {"routes": ["inference"], "models": ["*"]}}],
    }


@pytest.mark.parametrize("path", ["/v1", "/v1/console", "/admin/ui", "/mcp", "/health",
                                  "/dev", "/openai/ui", "/.well-known", "/models"])
def test_a_console_path_sharing_a_route_s_first_segment_is_refused(path):
    with pytest.raises(ConfigError) as caught:
        validate_settings(config(path=path), source="test.yaml")

    segment = path.split("/")[1]
    assert caught.value.problems == [
        f"console.path: {path!r} would share /{segment} with the gateway's own routes "
        "(choose another, such as /console)"]


@pytest.mark.parametrize("path", ["console", "/ui/", "/", "/a b", "/ui?x=1", "/ui/..",
                                  "/ui/./x", "/..", "/ops/../ui"],
                         ids=["relative", "trailing-slash", "root", "space", "query",
                              "dot-dot-last", "dot-segment", "dot-dot-only", "dot-dot-inside"])
def test_a_console_path_must_be_a_plain_absolute_path(path):
    with pytest.raises(ConfigError) as caught:
        validate_settings(config(path=path), source="test.yaml")

    assert any(problem.startswith("console.path") for problem in caught.value.problems)


def test_a_metrics_path_inside_the_configured_console_is_refused():
    data = config(path="/ops")
    data["server"] = {"metrics": {"path": "/ops/login"}}
    with pytest.raises(ConfigError) as caught:
        validate_settings(data, source="test.yaml")

    assert caught.value.problems == ["server.metrics.path: '/ops/login' is a path the gateway "
                                     "already serves (choose another, such as /metrics)"]


def test_the_route_table_serves_the_console_at_its_configured_path_only():
    router = Router("/ops/console")

    assert router.resolve("GET", "/ops/console/keys").operation is Operation.CONSOLE_KEYS
    assert router.resolve("POST", "/ops/console/keys/k1").resource == "k1"
    with pytest.raises(Exception, match="No route matches /console/keys"):
        router.resolve("GET", "/console/keys")


@pytest.mark.parametrize("path", ["/ui.v2", "/.ops", "/..ops", "/ops/a.b/c~d"])
def test_a_console_path_with_dots_inside_its_segments_is_taken(path):
    assert validate_settings(config(path=path), source="test.yaml").console.path == path
