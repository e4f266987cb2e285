"""What the commands share: the `--config` and `--state-dir` options, the configuration they
select (a file, or the embedded defaults, whose database and development issuer key live under
the state directory, with command-line overrides; a bad file ends the command), and the
consoles they write to."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from rolegate.config.launch import LaunchOptions
from rolegate.config.load import ConfigError
from rolegate.config.model import Settings

DEFAULT_STATE_DIR = Path(".rolegate")
ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")]
StateDirOption = Annotated[Path, typer.Option(
    "--state-dir", help="Where the embedded defaults keep their state: the development "
    "issuer's key and the SQLite database.")]

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

# Piped or redirected, output goes to scripts, files and pagers: lines as long as they need to
# be, where rich would otherwise wrap tables and text at 80 columns.
PIPED_WIDTH = 10_000


def _console(*, stderr: bool) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else PIPED_WIDTH)


out = _console(stderr=False)
err = _console(stderr=True)


def settings_for(config: Path | None, *, host: str | None = None, port: int | None = None,
                 state_dir: Path | None = None) -> Settings:
    try:
        return LaunchOptions(config, host, port, state_dir).settings()
    except ConfigError as exc:
        err.print(escape(str(exc)), style="red", soft_wrap=True, highlight=False)
        raise typer.Exit(1) from None


def print_json(value: object) -> None:
    """One JSON document on stdout, for scripts (no colour, no wrapping)."""
    print(json.dumps(value, indent=2, ensure_ascii=False))


def split(values: str) -> tuple[str, ...]:
    """A comma-separated option's values, blanks dropped."""
    return tuple(value.strip() for value in values.split(",") if value.strip())
