"""`ToolPins`: each tool's definition as first seen from its server, so a server that changes a
tool after clients approved it (a "rug pull": a new description carrying instructions, a wider
input schema) is noticed.

A definition is pinned by the SHA-256 of its canonical JSON (everything the server says of the
tool: description, schemas, annotations). A later `tools/list` showing another digest is logged
(`rolegate.mcp`, warning, with both digests); with `on_tool_change: hide` the changed tool is
also left out of lists and calls to it are refused until rolegate restarts with the change
reviewed. Pins live in the process: each worker pins what it sees first.

>>> changed = pins.check("forge", result["tools"])
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import orjson

log = logging.getLogger("rolegate.mcp")
MAX_PINS = 10_000


class ToolPins:
    def __init__(self) -> None:
        self._digests: dict[tuple[str, str], str] = {}
        self._changed: set[tuple[str, str]] = set()

    def check(self, server: str, tools: list[Any]) -> set[str]:
        """Pins the tools not seen before; the names of those whose definition changed since
        their pin (now or earlier)."""
        changed = set()
        for tool in tools:
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                continue
            key = (server, tool["name"])
            digest = _digest(tool)
            pinned = self._digests.get(key)
            if pinned is None and len(self._digests) < MAX_PINS:
                self._digests[key] = digest
            elif pinned is not None and pinned != digest:
                if key not in self._changed:
                    log.warning("MCP server %r changed the definition of tool %r after it was "
                                "pinned (sha256 %s, now %s)", server, key[1], pinned, digest)
                self._changed.add(key)
            if key in self._changed:
                changed.add(key[1])
        return changed

    def has_changed(self, server: str, tool: str) -> bool:
        return (server, tool) in self._changed


def _digest(tool: dict[str, Any]) -> str:
    """Of the canonical JSON (keys sorted), so a server reordering keys changes nothing."""
    try:
        encoded = orjson.dumps(tool, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # unencodable: a definition no client can read either
        encoded = repr(tool).encode("utf-8", "surrogatepass")
    return hashlib.sha256(encoded).hexdigest()
