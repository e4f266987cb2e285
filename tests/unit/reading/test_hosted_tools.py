"""A body that has the upstream call an MCP server itself is refused, naming the field; tools
the gateway forwards (functions, the vendor's own built-ins) pass."""

from __future__ import annotations

from typing import Any

import pytest

from rolegate.errors import InvalidRequest
from rolegate.reading.hosted_tools import hosted_mcp, refuse_hosted_mcp

USER = {"role": "user", "content": "hi"}
FUNCTION = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


@pytest.mark.parametrize(("operation", "body", "param"), [
    ("messages", {"messages": [USER], "mcp_servers": [
        {"type": "url", "url": "https://mcp.example.com/sse", "name": "x"}]}, "mcp_servers"),
    ("messages/count_tokens", {"messages": [USER], "mcp_servers": []}, "mcp_servers"),
    ("messages", {"messages": [USER], "tools": [
        {"name": "get", "input_schema": {"type": "object"}},
        {"type": "mcp_toolset", "mcp_server_name": "x"}]}, "tools[1]"),
    ("responses", {"input": "hi", "tools": [
        {"type": "mcp", "server_label": "x", "server_url": "https://mcp.example.com"}]},
     "tools[0]"),
    ("chat/completions", {"messages": [USER], "tools": [FUNCTION, {"type": "mcp"}]},
     "tools[1]"),
], ids=["anthropic-connector", "anthropic-count", "anthropic-toolset", "responses-remote-mcp",
        "chat"])
def test_a_vendor_hosted_mcp_client_is_refused_naming_the_field(operation, body, param):
    with pytest.raises(InvalidRequest) as caught:
        refuse_hosted_mcp(operation, body)

    assert (caught.value.code, caught.value.param) == ("hosted_mcp_refused", param)
    assert "/mcp/{server}" in str(caught.value.message)


@pytest.mark.parametrize(("operation", "body"), [
    ("chat/completions", {"messages": [USER], "tools": [FUNCTION]}),
    ("chat/completions", {"messages": [USER], "tools": "not a list"}),
    ("chat/completions", {"messages": [USER], "tools": ["not an object"]}),
    ("responses", {"input": "hi", "tools": [{"type": "web_search"}]}),
    ("responses", {"input": "hi"}),
    ("messages", {"messages": [USER], "tools": [{"name": "mcp", "input_schema": {}}]}),
    ("embeddings", {"input": "hi", "mcp_servers": [], "tools": [{"type": "mcp"}]}),
    ("generateContent", {"contents": [], "tools": [{"type": "mcp"}]}),
], ids=["function", "tools-not-a-list", "tool-not-an-object", "builtin", "no-tools",
        "a-function-named-mcp", "other-operation", "gemini"])
def test_tools_the_gateway_forwards_pass(operation: str, body: dict[str, Any]):
    assert hosted_mcp(operation, body) is None
