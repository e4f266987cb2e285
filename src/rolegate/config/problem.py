"""`Problem`: one thing wrong with a configuration, at a path inside it and, when it was read
from a file, at a line and column."""

from __future__ import annotations

from dataclasses import dataclass

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """`Problem(("policy", 2, "allow", "models"), "'gpt-5' matches no model").describe()`."""

    loc: Loc
    message: str
    label: str | None = None  # how the path is written when plain `loc` would say too little
    position: tuple[int, int] | None = None  # 1-based line and column

    @property
    def path(self) -> str:
        if self.label is not None:
            return self.label
        text = ""
        for part in self.loc:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
        return text or "<root>"

    def describe(self, source: str | None = None) -> str:
        """`policy[2].allow.models: …`, or `rolegate.yaml:12:5: policy[2].allow.models: …`."""
        text = f"{self.path}: {self.message}"
        if source is not None and self.position is not None:
            line, column = self.position
            return f"{source}:{line}:{column}: {text}"
        return text
