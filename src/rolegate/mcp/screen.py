"""`Screen`: what an MCP server sends back, as the caller may see it. Applied to the JSON reply
and to every message of an SSE stream (the reply's, and a standing GET stream's), so nothing
naming a tool, resource or prompt reaches a caller the policy keeps it from:

- the response to a list request keeps only the items the caller may use, and is marked
  `cacheScope: private`; tools are checked against their pinned definitions (`pins.py`);
- `notifications/resources/updated` for a resource the caller may not read is dropped;
- everything else (progress, log messages, `list_changed`, which name nothing, and the
  server's own requests) passes unchanged: a client re-lists after `list_changed`, and that
  list is filtered.

>>> screen = Screen(policy, pins, server_config, who, "/mcp/forge", answering=message)
>>> screen.message({"jsonrpc": "2.0", "id": 1, "result": {"tools": [...]}})
"""

from __future__ import annotations

from typing import Any

from rolegate.api.routes import RouteGroup
from rolegate.authn.principal import Principal
from rolegate.authz.model import Action, McpTarget
from rolegate.authz.policy import RolePolicy
from rolegate.config.model import McpServerConfig
from rolegate.mcp.messages import LISTS, Message
from rolegate.mcp.pins import ToolPins

RESOURCE_UPDATED = "notifications/resources/updated"


class Screen:
    def __init__(self, policy: RolePolicy, pins: ToolPins, server: McpServerConfig,
                 who: Principal, path: str, answering: Message | None) -> None:
        self._policy = policy
        self._pins = pins
        self._server = server
        self._who = who
        self._path = path
        self._answering = answering

    def message(self, value: dict[str, Any]) -> dict[str, Any] | None:
        """`value` as the caller may see it, or None when it must not reach the caller."""
        answering = self._answering
        if answering is not None and "method" not in value and value.get("id") == answering.id:
            result = value.get("result")
            if answering.method in LISTS and isinstance(result, dict):
                self._filter(answering.method, result)
            return value
        if value.get("method") == RESOURCE_UPDATED:
            params = value.get("params")
            uri = params.get("uri") if isinstance(params, dict) else None
            if not isinstance(uri, str) or not self._allows("resource", uri):
                return None
        return value

    def _allows(self, kind: str, name: str) -> bool:
        target = McpTarget(self._server.name, kind, name)
        return self._policy.decide(self._who, Action(RouteGroup.MCP, self._path,
                                                     mcp=target)).allowed

    def _filter(self, method: str, result: dict[str, Any]) -> None:
        """Keeps the items the caller may use; the list is the caller's own, so no cache may
        share it (`cacheScope: private`)."""
        field, kind, key = LISTS[method]
        items = result.get(field)
        if not isinstance(items, list):
            return
        if kind == "tool":
            changed = self._pins.check(self._server.name, items)
            if self._server.on_tool_change == "hide":
                items = [item for item in items
                         if not (isinstance(item, dict) and item.get("name") in changed)]
        result[field] = [item for item in items if isinstance(item, dict)
                         and isinstance(item.get(key), str) and self._allows(kind, item[key])]
        if "cacheScope" in result or "ttlMs" in result:
            result["cacheScope"] = "private"
