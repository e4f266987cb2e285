"""The configuration a command runs with: a file, or the embedded defaults (whose database lives
under the state directory), with command-line overrides; a bad file ends the command."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from rolegate.config.launch import LaunchOptions
from rolegate.config.load import ConfigError
from rolegate.config.model import Settings


def settings_for(config: Path | None, *, host: str | None = None, port: int | None = None,
                 state_dir: Path | None = None) -> Settings:
    try:
        return LaunchOptions(config, host, port, state_dir).settings()
    except ConfigError as exc:
        Console(stderr=True).print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
