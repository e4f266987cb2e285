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
from rolegate.config.model import KeysConfig, Settings
from rolegate.config.otel import with_otel_environment

DATABASE_FILE = "rolegate.db"

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
    return parse_settings(text, source=source, environ=os.environ if environ is None else environ,
                          default_database=Path(path).resolve().parent / DATABASE_FILE)


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def read_pepper(keys: KeysConfig) -> bytes:
    """The key-hashing pepper, from the config value or the file it names."""
    if keys.pepper is not None:
        return keys.pepper.get_secret_value().encode()
    if keys.pepper_file is None:
        raise ConfigError("keys", ["keys: give pepper or pepper_file"])
    try:
        pepper = Path(keys.pepper_file).read_bytes().strip()
    except OSError as exc:
        raise ConfigError("keys", [f"keys.pepper_file: cannot read it: {exc.strerror}"]) from None
    if len(pepper) < 16:
        raise ConfigError("keys", ["keys.pepper_file: the pepper must be at least 16 bytes"])
    return pepper


def parse_settings(text: str, *, source: str, environ: Mapping[str, str],
                   default_database: Path | None = None) -> Settings:
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
    tracing = with_otel_environment(data.get("tracing"), environ)
    if tracing is not None:
        data["tracing"] = tracing
    if default_database is not None:
        database = data.setdefault("database", {})
        if isinstance(database, dict) and not database.get("url"):
            database["url"] = sqlite_url(default_database)
    return validate_settings(data, source=source)


def validate_settings(data: dict[str, Any], *, source: str) -> Settings:
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, [_describe(_inline_location(error, data))
                                   for error in exc.errors()]) from None
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


def _inline_location(error: Any, data: dict[str, Any]) -> Any:
    """A model's inline deployment is reported where it was written: `models[0].api_base`, not
    `models[0].deployments[0].api_base`."""
    loc = tuple(error["loc"])
    if len(loc) >= 4 and loc[0] == "models" and loc[2:4] == ("deployments", 0):
        models = data.get("models")
        written = models[loc[1]] if isinstance(models, list) and isinstance(loc[1], int) \
            and loc[1] < len(models) else None
        if isinstance(written, dict) and "deployments" not in written:
            return {**error, "loc": loc[:2] + loc[4:]}
    return error


def _describe(error: Any) -> str:
    location = ""
    for part in error["loc"]:
        location += f"[{part}]" if isinstance(part, int) else (f".{part}" if location else part)
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key (check its spelling)"
    return f"{location or '<root>'}: {message}"
