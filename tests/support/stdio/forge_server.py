"""An MCP server on stdio built with the official SDK, for the stdio tests: `python
forge_server.py`. Each tool call it runs is appended to the file `$CALLS_FILE`."""

from __future__ import annotations

import os

from mcp.server.mcpserver import MCPServer

server = MCPServer("forge-stdio")


def _called(name: str) -> None:
    with open(os.environ["CALLS_FILE"], "a") as calls:
        calls.write(name + "\n")


@server.tool()
def search_code(query: str) -> str:
    _called("search_code")
    return f"code for {query}"


@server.tool()
def delete_repo(repository: str) -> str:
    _called("delete_repo")
    return f"deleted {repository}"


@server.tool()
def search_pid() -> str:
    """This process's id: tells one run of the server from the next."""
    _called("search_pid")
    return str(os.getpid())


@server.tool()
def search_crash() -> str:
    """Ends the process without answering."""
    _called("search_crash")
    os._exit(3)


if __name__ == "__main__":
    server.run("stdio")
