"""What is asked (`Action`) and what was decided (`Decision`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class McpTarget:
    """What an MCP request names: a server and, unless asking for the server itself, a tool,
    resource or prompt of it."""

    server: str
    kind: str = "server"  # "server", "tool", "resource" or "prompt"
    name: str | None = None
    # A call's top-level arguments (string values; None for any other), checked against a
    # rule's argument constraints; None when listing, which constraints do not narrow.
    arguments: tuple[tuple[str, str | None], ...] | None = None

    def describe(self) -> str:
        server = f"MCP server {self.server!r}"
        return server if self.name is None else f"{self.kind} {self.name!r} of {server}"


@dataclass(frozen=True, slots=True)
class Action:
    """One request as the policy sees it: its route group, its path and, if any, its model
    or the MCP server (and tool, resource or prompt) it names."""

    route: str
    path: str
    model: str | None = None
    mcp: McpTarget | None = None

    def describe(self) -> str:
        target = f"model {self.model!r} on " if self.model is not None else ""
        if self.mcp is not None:
            target = f"{self.mcp.describe()} on "
        # The group's name, quoted as written (a `RouteGroup` is a str whose repr is not).
        return f"{target}route group '{self.route}' ({self.path})"


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    rule: str | None
    reason: str
    code: str = "allowed"
