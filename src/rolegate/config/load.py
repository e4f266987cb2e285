"""Reading a YAML file into `Settings`, with `${NAME}` / `${env:NAME}` interpolation.

This module and `defaults.py` are the only places that read the environment (the standard proxy
variables too: they are handed to `egress.py`). Every problem is
collected and reported together, each message naming the file and the path inside it.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from rolegate.config.checks import cross_reference_problems
from rolegate.config.document import LITELLM_KEYS, YamlDocument
from rolegate.config.egress import with_environment_egress
from rolegate.config.model import KeysConfig, Settings
from rolegate.config.otel import with_otel_environment
from rolegate.config.partial import partial_settings
from rolegate.config.problem import Loc, Problem

DATABASE_FILE = "rolegate.db"

_REFERENCE = re.compile(r"\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(Exception):
    """The configuration cannot be used; `problems` lists every reason, and `details` the same
    as data (`line`, `column`, `path`, `message` where known) for `rolegate check --json`."""

    def __init__(self, source: str, problems: list[str],
                 details: list[dict[str, Any]] | None = None) -> None:
        self.source = source
        self.problems = problems
        self.details = details if details is not None else [
            {"message": problem} for problem in problems]
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
        document = YamlDocument.parse(text)
    except yaml.YAMLError as exc:
        raise ConfigError(source, [_yaml_error(source, exc)]) from None
    raw = {} if document.data is None else document.data
    if not isinstance(raw, dict):
        raise ConfigError(source, ["the top level must be a mapping"])
    litellm = [key for key in LITELLM_KEYS if key in raw]
    if litellm:
        problem = Problem((litellm[0],), f"this is a LiteLLM proxy config ({', '.join(litellm)}); "
                          "rolegate's format differs: `rolegate import litellm FILE` writes "
                          "one from it (README \"Moving from LiteLLM\")")
        raise _config_error(source, [problem], document)
    problems = list(document.duplicates)
    data = _interpolate(raw, environ, loc=(), problems=problems)
    data = with_environment_egress(data, environ)
    tracing = with_otel_environment(data.get("tracing"), environ)
    if tracing is not None:
        data["tracing"] = tracing
    if default_database is not None:
        database = data.setdefault("database", {})
        if isinstance(database, dict) and not database.get("url"):
            database["url"] = sqlite_url(default_database)
    return validate_settings(data, source=source, document=document, problems=problems)


def validate_settings(data: dict[str, Any], *, source: str, document: YamlDocument | None = None,
                      problems: list[Problem] | None = None) -> Settings:
    """Validate `data` and cross-check it, or raise `ConfigError` with every problem found:
    the schema's, then the cross-references of whatever parts are valid (plus `problems`
    already found while reading). With the `document` it came from, each names a line."""
    problems = list(problems or [])
    reported = {problem.loc for problem in problems}  # a value already blamed, e.g. left empty
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        found = (_problem(_inline_location(error, data)) for error in exc.errors())
        problems += [problem for problem in found if problem.loc not in reported]
        settings = partial_settings(data)
    problems += cross_reference_problems(settings)
    if problems:
        raise _config_error(source, problems, document)
    return settings


def _config_error(source: str, problems: list[Problem],
                  document: YamlDocument | None) -> ConfigError:
    if document is not None:
        problems = [replace(problem, position=problem.position or document.position(problem.loc))
                    for problem in problems]
    details: list[dict[str, Any]] = [{"path": problem.path, "message": problem.message}
                                     for problem in problems]
    for detail, problem in zip(details, problems, strict=True):
        if document is not None and problem.position is not None:
            detail.update(file=source, line=problem.position[0], column=problem.position[1])
    return ConfigError(source, [problem.describe(source if document is not None else None)
                                for problem in problems], details)


def _yaml_error(source: str, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    if isinstance(exc, yaml.MarkedYAMLError) and mark is not None:
        reason = " ".join(part for part in (exc.context, exc.problem) if part)
        return f"{source}:{mark.line + 1}:{mark.column + 1}: not valid YAML: {reason}"
    return f"not valid YAML: {exc}"


def _interpolate(value: Any, environ: Mapping[str, str], *, loc: Loc,
                 problems: list[Problem]) -> Any:
    if isinstance(value, str):
        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in environ:
                problems.append(Problem(loc, f"environment variable {name} is not set"))
                return ""
            return environ[name]
        return _REFERENCE.sub(substitute, value)
    if isinstance(value, dict):
        return {key: _interpolate(item, environ, loc=(*loc, key), problems=problems)
                for key, item in value.items()}
    if isinstance(value, list):
        return [_interpolate(item, environ, loc=(*loc, index), problems=problems)
                for index, item in enumerate(value)]
    return value


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


def _problem(error: Any) -> Problem:
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key (check its spelling)"
    return Problem(tuple(error["loc"]), message)
