"""Refusing a body that asks the upstream to call an MCP server itself.

Anthropic's MCP connector (`mcp_servers`, and `mcp_toolset` tools) and the Responses API's
remote MCP tools (`{"type": "mcp", "server_url": …}`) have the vendor reach an MCP server and
run its tools on the caller's behalf: those calls never pass the gateway, so the policy's
`allow.mcp` (servers, tools, argument constraints, per-tool limits, usage records) would govern
none of them. Such a body is refused with 400 `hosted_mcp_refused` naming the field; MCP
servers are reached through `/mcp/{server}`, where every call is decided.

>>> hosted_mcp("responses", {"tools": [{"type": "mcp", "server_url": "https://x"}]})
'tools[0]'
"""

from __future__ import annotations

from typing import Any

from rolegate.errors import InvalidRequest

_MESSAGES = ("messages", "messages/count_tokens")
# A tool's `type` naming a vendor-hosted MCP client: Responses' `mcp`, Anthropic's `mcp_toolset`.
_HOSTED_MCP_TYPES = frozenset({"mcp", "mcp_toolset"})


def refuse_hosted_mcp(operation: str, body: dict[str, Any]) -> None:
    """400 when `body`, a call of `operation`, has the upstream call an MCP server."""
    where = hosted_mcp(operation, body)
    if where is not None:
        raise InvalidRequest(f"`{where}` has the upstream call an MCP server itself, outside "
                             "the gateway's MCP authorization; reach MCP servers through "
                             "/mcp/{server}.", code="hosted_mcp_refused", param=where)


def hosted_mcp(operation: str, body: dict[str, Any]) -> str | None:
    """Where `body` asks for a vendor-hosted MCP client, or None."""
    if operation in _MESSAGES and body.get("mcp_servers") is not None:
        return "mcp_servers"
    if operation not in (*_MESSAGES, "responses", "chat/completions"):
        return None
    tools = body.get("tools")
    if not isinstance(tools, list):
        return None
    for index, tool in enumerate(tools):
        if isinstance(tool, dict) and tool.get("type") in _HOSTED_MCP_TYPES:
            return f"tools[{index}]"
    return None
