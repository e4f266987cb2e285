"""The configuration a command runs with: a file, or the embedded defaults (whose database lives
under the state directory), with command-line overrides."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from rolegate.config.defaults import embedded_settings
from rolegate.config.load import DATABASE_FILE, ConfigError, load_settings, sqlite_url
from rolegate.config.model import Settings


def settings_for(config: Path | None, *, host: str | None = None, port: int | None = None,
                 state_dir: Path | None = None) -> Settings:
    try:
        settings = load_settings(config) if config else embedded_settings()
    except ConfigError as exc:
        Console(stderr=True).print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    server = settings.server.model_copy(update={
        key: value for key, value in (("host", host), ("port", port)) if value is not None})
    updates: dict[str, object] = {"server": server}
    if settings.database.url is None and state_dir is not None:
        state_dir.mkdir(parents=True, exist_ok=True)
        url = sqlite_url((state_dir / DATABASE_FILE).resolve())
        updates["database"] = settings.database.model_copy(update={"url": url})
    return settings.model_copy(update=updates)
