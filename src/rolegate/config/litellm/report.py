"""`Report`: what an import made of every setting it read, one line each: what it became, or why
it could not be mapped. Printed to stderr by `rolegate import litellm`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_ENVIRON = re.compile(r"^os\.environ/([A-Za-z_][A-Za-z0-9_]*)$")


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)

    def mapped(self, source: str, result: str) -> None:
        self.lines.append(f"mapped      {source} -> {result}")

    def unmapped(self, source: str, why: str) -> None:
        self.lines.append(f"NOT MAPPED  {source}: {why}")

    def note(self, source: str, text: str) -> None:
        self.lines.append(f"note        {source}: {text}")

    def render(self) -> str:
        return "\n".join(self.lines) + ("\n" if self.lines else "")


def secret(value: Any, source: str, report: Report) -> str:
    """A LiteLLM value as rolegate writes it: `os.environ/NAME` becomes `${NAME}`; a literal
    secret is kept, with a warning."""
    text = str(value)
    match = _ENVIRON.match(text)
    if match is not None:
        return f"${{{match.group(1)}}}"
    report.note(source, "a literal secret was copied; put it in the environment and write "
                "${NAME} instead")
    return text


def plain(value: Any) -> Any:
    """A non-secret value: `os.environ/NAME` becomes `${NAME}`, anything else is kept."""
    if isinstance(value, str):
        match = _ENVIRON.match(value)
        if match is not None:
            return f"${{{match.group(1)}}}"
    return value
