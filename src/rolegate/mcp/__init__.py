"""The MCP gateway: `/mcp/{server}` (Streamable HTTP), authorized tool by tool."""
