"""What is asked (`Action`) and what was decided (`Decision`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Action:
    """One request as the policy sees it: its route group, its path and, if any, its model."""

    route: str
    path: str
    model: str | None = None

    def describe(self) -> str:
        target = f"model {self.model!r} on " if self.model is not None else ""
        # The group's name, quoted as written (a `RouteGroup` is a str whose repr is not).
        return f"{target}route group '{self.route}' ({self.path})"


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    rule: str | None
    reason: str
    code: str = "allowed"
