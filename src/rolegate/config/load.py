"""Reading a YAML file into `Settings`, with `${NAME}` / `${env:NAME}` interpolation.

This module and `defaults.py` are the only places that read the environment. Every problem is
collected and reported together, each message naming the file and the path inside it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from rolegate.config.checks import cross_reference_problems
from rolegate.config.model import Settings

_REFERENCE = re.compile(r"\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(Exception):
    """The configuration cannot be used; `problems` lists every reason."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        listing = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{source}: {len(problems)} problem(s) in the configuration:\n{listing}")


def load_settings(path: str | Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read, interpolate, validate and cross-check the configuration at `path`."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, [f"cannot read the file: {exc.strerror}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(source, [f"the file is not UTF-8 text (byte {exc.start})"]) from None
    return parse_settings(text, source=source, environ=os.environ if environ is None else environ)


def parse_settings(text: str, *, source: str, environ: Mapping[str, str]) -> Settings:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(source, [f"not valid YAML: {exc}"]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(source, ["the top level must be a mapping"])
    problems: list[str] = []
    data = _interpolate(raw, environ, path="", problems=problems)
    if problems:
        raise ConfigError(source, problems)
    return validate_settings(data, source=source)


def validate_settings(data: dict[str, Any], *, source: str) -> Settings:
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, [_describe(error) for error in exc.errors()]) from None
    problems = cross_reference_problems(settings)
    if problems:
        raise ConfigError(source, problems)
    return settings


def _interpolate(value: Any, environ: Mapping[str, str], *, path: str, problems: list[str]) -> Any:
    if isinstance(value, str):
        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in environ:
                problems.append(f"{path or '<root>'}: environment variable {name} is not set")
                return ""
            return environ[name]
        return _REFERENCE.sub(substitute, value)
    if isinstance(value, dict):
        return {key: _interpolate(item, environ, path=_join(path, key), problems=problems)
                for key, item in value.items()}
    if isinstance(value, list):
        return [_interpolate(item, environ, path=f"{path}[{index}]", problems=problems)
                for index, item in enumerate(value)]
    return value


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _describe(error: Any) -> str:
    location = ""
    for part in error["loc"]:
        location += f"[{part}]" if isinstance(part, int) else (f".{part}" if location else part)
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key (check its spelling)"
    return f"{location or '<root>'}: {message}"
