"""`mcp_target`: the MCP request `rolegate explain --mcp-server ...` asks about, from its options;
a usage error (exit 2) when they do not describe one."""

from __future__ import annotations

from typing import NoReturn

import orjson
import typer

from rolegate.authz.model import McpTarget
from rolegate.cli.options import err


def mcp_target(server: str | None, tool: str | None, resource: str | None, prompt: str | None,
               arguments: str | None) -> McpTarget | None:
    named = [(kind, name) for kind, name in (("tool", tool), ("resource", resource),
                                             ("prompt", prompt)) if name is not None]
    if server is None:
        if named or arguments is not None:
            _usage("--tool, --resource, --prompt and --arguments need --mcp-server.")
        return None
    if len(named) > 1:
        _usage("Give one of --tool, --resource or --prompt.")
    if arguments is not None and (not named or named[0][0] != "tool"):
        _usage("--arguments go with --tool.")
    if not named:
        return McpTarget(server)
    kind, name = named[0]
    return McpTarget(server, kind, name, _arguments(arguments) if kind == "tool" else None)


def _arguments(text: str | None) -> tuple[tuple[str, str | None], ...]:
    """As the gateway reads a call's arguments: string values as they are, None otherwise."""
    if text is None:
        return ()
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        _usage(f"--arguments is not JSON: {exc}.")
    if not isinstance(value, dict):
        _usage("--arguments must be a JSON object.")
    return tuple((key, item if isinstance(item, str) else None) for key, item in value.items())


def _usage(message: str) -> NoReturn:
    err.print(f"[red]{message}[/red]")
    raise typer.Exit(2)
