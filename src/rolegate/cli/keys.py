"""`rolegate keys update`: change a stored key's fields; the others are kept."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from rolegate.cli.data import _key_store as key_store
from rolegate.cli.data import _run as run_with_database
from rolegate.cli.grants import (
    LIMIT_OPTIONS, expiry, grant_warnings, print_warnings, refuse_control_characters,
)
from rolegate.cli.options import (
    DEFAULT_STATE_DIR, ConfigOption, StateDirOption, err, settings_for, split,
)
from rolegate.config.model import LimitConfig
from rolegate.keys.records import ApiKey
from rolegate.storage.database import Database


def keys_update(
    key_id: Annotated[str, typer.Argument(help="The key's id (key_...).")],
    name: Annotated[str | None, typer.Option(help="What the key is for.")] = None,
    owner: Annotated[str | None, typer.Option(help="Who answers for it.")] = None,
    roles: Annotated[str | None, typer.Option(help="Comma-separated roles (replaces).")] = None,
    scopes: Annotated[str | None, typer.Option(help="Comma-separated scopes (replaces).")] = None,
    models: Annotated[str | None, typer.Option(
        help="Comma-separated model globs (replaces); '*' for every model.")] = None,
    expires_in: Annotated[str | None, typer.Option(help="From now, e.g. 90d, 12h.")] = None,
    rpm: Annotated[int | None, typer.Option(min=1, help="Requests per minute.")] = None,
    tpm: Annotated[int | None, typer.Option(min=1, help="Tokens per minute.")] = None,
    daily_tokens: Annotated[int | None, typer.Option(min=1, help="Tokens per UTC day.")] = None,
    monthly_budget_usd: Annotated[float | None, typer.Option(
        min=0.000001, help="USD per month.")] = None,
    config: ConfigOption = None, state_dir: StateDirOption = DEFAULT_STATE_DIR,
) -> None:
    """Change a key's name, owner, roles, scopes, models, expiry or limits (others are kept)."""
    settings = settings_for(config, state_dir=state_dir)
    refuse_control_characters(name=name, owner=owner, roles=roles, scopes=scopes, models=models)
    changes: dict[str, Any] = {field: value for field, value in (
        ("name", name), ("owner", owner)) if value is not None}
    for field, value in (("roles", roles), ("scopes", scopes)):
        if value is not None:
            changes[field] = split(value)
    if models is not None:
        changes["models"] = None if split(models) == ("*",) else split(models)
    if expires_in is not None:
        changes["expires_at"] = expiry(expires_in, time.time())
    limits = {field: value for field, value in zip(
        LIMIT_OPTIONS, (rpm, tpm, daily_tokens, monthly_budget_usd), strict=True)
        if value is not None}
    if not changes and not limits:
        err.print("[red]Nothing to change: give at least one option (see --help).[/red]")
        raise typer.Exit(1)
    print_warnings(grant_warnings(settings, changes.get("roles", ()), changes.get("models")))

    async def update(database: Database) -> ApiKey | None:
        store = key_store(settings, database)
        current = await store.get(key_id)
        if current is None:
            return None
        if limits:
            kept = current.limits.model_dump() if current.limits is not None else {}
            changes["limits"] = LimitConfig.model_validate({**kept, **limits})
        return await store.update(key_id, changes)
    updated = run_with_database(settings, update)
    if updated is None:
        err.print(f"[red]No key has the id {key_id!r}.[/red]")
        raise typer.Exit(1)
    err.print(f"Updated {key_id}: {', '.join([*changes])}.", highlight=False)


