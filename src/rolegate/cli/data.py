"""`rolegate keys …`, `rolegate usage` and `rolegate db upgrade`: commands that talk to the
database directly, with the configuration's `database` and `keys` settings."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from rolegate.accounting.period import parse_instant
from rolegate.accounting.store import FILTERS, GROUPINGS, UsageQuery, UsageStore, columns_of
from rolegate.admin.schemas import has_control_character
from rolegate.cli.grants import (
    expiry, grant_warnings, print_warnings, refuse_control_characters,
)
from rolegate.cli.options import (
    DEFAULT_STATE_DIR, ConfigOption, JsonOption, StateDirOption, err, out, print_json,
    settings_for, split,
)
from rolegate.config.load import ConfigError, read_pepper
from rolegate.config.model import LimitConfig, Settings
from rolegate.keys.material import KeyHasher
from rolegate.keys.store import KeyStore
from rolegate.storage.database import Database, SchemaBehind, first_line

if TYPE_CHECKING:
    from rolegate.explain import Explanation

T = TypeVar("T")
keys_cli = typer.Typer(no_args_is_help=True, help="Create, list and revoke virtual API keys.")
db_cli = typer.Typer(no_args_is_help=True, help="The database: schema migrations.")


def _load(config: Path | None, state_dir: Path) -> Settings:
    return settings_for(config, state_dir=state_dir)


def _run(settings: Settings, work: Callable[[Database], Awaitable[T]], *,
         is_upgrade: bool = False) -> T:
    """`work` on the configured database, migrated first when it migrates on start, else
    verified to be current (except for `db upgrade` itself). A database error ends the command
    with one line: never a traceback, a statement or a driver's multi-line dump."""
    if settings.database.url is None:
        err.print("[red]No database is configured (database.url).[/red]")
        raise typer.Exit(1)

    async def session() -> T:
        database = Database(settings.database)
        try:
            if database.migrates_on_start and not is_upgrade:
                await database.upgrade()
            elif not is_upgrade:
                await database.verify_schema()
            return await work(database)
        finally:
            await database.close()
    try:
        return asyncio.run(session())
    except SchemaBehind as exc:
        err.print(f"{exc}: run `rolegate db upgrade` (with the same --config) first.",
                  markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except (SQLAlchemyError, OSError) as exc:
        err.print(f"The database failed: {first_line(exc)}", markup=False, highlight=False,
                  soft_wrap=True)
        raise typer.Exit(1) from None


def _key_store(settings: Settings, database: Database) -> KeyStore:
    if not settings.keys.enabled:
        err.print("[red]Virtual API keys are not enabled (keys.enabled).[/red]")
        raise typer.Exit(1)
    try:
        pepper = read_pepper(settings.keys)
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    return KeyStore(database.engine, KeyHasher(pepper))


def explain_key(settings: Settings, key: str, route: str, model: str | None) -> Explanation:
    """`rolegate explain` for a virtual API key: looked up in the configured database."""
    from rolegate.explain import explain_key as run_explain_key

    if not settings.keys.enabled or settings.database.url is None:
        return asyncio.run(run_explain_key(settings, None, key, route, model))
    return _run(settings, lambda database: run_explain_key(
        settings, _key_store(settings, database), key, route, model))


def explain_key_id(settings: Settings, key_id: str, route: str,
                   model: str | None) -> Explanation:
    """`rolegate explain --key-id`: the key's record read from the configured database."""
    from rolegate.explain import explain_key_id as run_explain_key_id

    if not settings.keys.enabled or settings.database.url is None:
        return asyncio.run(run_explain_key_id(settings, None, key_id, route, model))
    return _run(settings, lambda database: run_explain_key_id(
        settings, _key_store(settings, database), key_id, route, model))


def usd(amount: float) -> str:
    """A cost for people: cents for whole amounts, up to micro-dollars for small ones
    (12.50, 0.0025, 0.000012; 0 for nothing)."""
    if amount == 0:
        return "0"
    text = f"{amount:.6f}".rstrip("0")
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def _when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts))


@keys_cli.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="What the key is for.")],
    owner: Annotated[str, typer.Option(help="Who answers for it (the principal's subject).")],
    roles: Annotated[str, typer.Option(help="Comma-separated roles.")] = "",
    scopes: Annotated[str, typer.Option(help="Comma-separated scopes.")] = "",
    models: Annotated[str | None, typer.Option(help="Comma-separated model globs.")] = None,
    expires_in: Annotated[str | None, typer.Option(help="e.g. 90d, 12h.")] = None,
    rpm: Annotated[int | None, typer.Option(help="Requests per minute.")] = None,
    tpm: Annotated[int | None, typer.Option(help="Tokens per minute.")] = None,
    daily_tokens: Annotated[int | None, typer.Option(help="Tokens per UTC day.")] = None,
    monthly_budget_usd: Annotated[float | None, typer.Option(help="USD per month.")] = None,
    config: ConfigOption = None, state_dir: StateDirOption = DEFAULT_STATE_DIR,
) -> None:
    """Create a key and print it. It is shown only this once."""
    settings = _load(config, state_dir)
    refuse_control_characters(name=name, owner=owner, roles=roles, scopes=scopes, models=models)
    now = time.time()
    expires_at = None if expires_in is None else expiry(expires_in, now)
    print_warnings(grant_warnings(settings, split(roles),
                                  None if models is None else split(models)))
    limits = LimitConfig(rpm=rpm, tpm=tpm, daily_tokens=daily_tokens,
                         monthly_budget_usd=monthly_budget_usd)

    async def create(database: Database) -> tuple[str, Any]:
        return await _key_store(settings, database).create(
            name=name, owner=owner, now=now, roles=split(roles), scopes=split(scopes),
            models=None if models is None else split(models),
            limits=None if limits.is_empty else limits, expires_at=expires_at)
    plaintext, record = _run(settings, create)
    err.print(f"Created key {record.id} ({record.name}, owner {record.owner}). "
              "Store it now: it is not shown again.")
    print(plaintext)


@keys_cli.command("list")
def keys_list(
    owner: Annotated[str | None, typer.Option(help="Only this owner's keys.")] = None,
    include_revoked: Annotated[bool, typer.Option(help="Also revoked keys.")] = False,
    config: ConfigOption = None, state_dir: StateDirOption = DEFAULT_STATE_DIR,
    as_json: JsonOption = False,
) -> None:
    """List keys (never their plaintext)."""
    settings = _load(config, state_dir)

    async def listing(database: Database) -> list[Any]:
        return await _key_store(settings, database).list(owner=owner,
                                                         include_revoked=include_revoked)
    keys = _run(settings, listing)
    if as_json:
        print_json([key.public_view() for key in keys])
        return
    table = Table(title="API keys")
    table.add_column("id", no_wrap=True, min_width=20)
    table.add_column("hint", no_wrap=True, min_width=10)
    for column in ("name", "owner", "roles", "models", "expires", "last used", "revoked"):
        table.add_column(column, overflow="fold")
    for key in keys:
        table.add_row(key.id, key.hint, key.name, key.owner, ", ".join(key.roles),
                      "*" if key.models is None else ", ".join(key.models), _when(key.expires_at),
                      _when(key.last_used_at), _when(key.revoked_at))
    out.print(table)


@keys_cli.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (key_...).")],
                config: ConfigOption = None,
                state_dir: StateDirOption = DEFAULT_STATE_DIR) -> None:
    """Revoke a key. Every replica refuses it within keys.cache_ttl seconds."""
    settings = _load(config, state_dir)
    now = time.time()

    async def revoke(database: Database) -> Any:
        return await _key_store(settings, database).revoke(key_id, now=now)
    record = _run(settings, revoke)
    if record is None:
        err.print(f"[red]No key has the id {key_id!r}.[/red]")
        raise typer.Exit(1)
    if record.revoked_at != now:  # the store leaves an earlier revocation as it was
        err.print(f"{key_id} was already revoked on {_when(record.revoked_at)} UTC; "
                  "nothing changed.", highlight=False)
        return
    err.print(f"Revoked {key_id}.")

_TOTALS = ("requests", "prompt", "completion", "total", "cost (USD)", "estimated")


def usage(
    by: Annotated[str, typer.Option(help=f"Grouping: {', '.join(GROUPINGS)}, or a name in "
                                    "accounting.dimensions.")] = "principal",
    since: Annotated[str | None, typer.Option(help="7d, 24h, an ISO date…")] = "7d",
    until: Annotated[str | None, typer.Option(help="End (exclusive).")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    subject: Annotated[str | None, typer.Option(help="Only this subject.")] = None,
    config: ConfigOption = None, state_dir: StateDirOption = DEFAULT_STATE_DIR,
    as_json: JsonOption = False,
) -> None:
    """Usage totals (requests, tokens, cost) grouped by principal, client, key, model or day."""
    settings = _load(config, state_dir)
    groupings = (*GROUPINGS, *settings.accounting.dimensions)
    if by not in groupings:
        err.print(f"[red]--by must be one of {', '.join(groupings)}[/red]")
        raise typer.Exit(1)
    now = time.time()
    try:
        start = parse_instant(since, now) if since else None
        end = parse_instant(until, now) if until else None
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    filters = tuple((n, v) for n, v in (("model", model), ("subject", subject))
                    if v is not None and n in FILTERS)
    for name, value in filters:  # as /admin/usage does: no database sees a NUL
        if has_control_character(value):
            err.print(f"[red]--{name} must not contain control characters[/red]")
            raise typer.Exit(1)
    query = UsageQuery(by=by, since=start, until=end, filters=filters)

    async def totals(database: Database) -> list[dict[str, Any]]:
        return await UsageStore(database.engine).totals(query)
    rows = _run(settings, totals)
    if as_json:  # the rows as the admin API gives them: the grouping's columns, then the totals
        print_json(rows)
        return
    table = Table(title=f"usage by {by}" + (f" since {since}" if since else ""))
    names = columns_of(by)
    for column in (*(by if name == "value" else name for name in names), "requests", "prompt",
                   "completion", "total", "cost (USD)", "estimated"):
        table.add_column(column, justify="right" if column in _TOTALS else "left")
    for row in rows:
        table.add_row(*(str(row[name]) for name in names), str(row["requests"]),
                      str(row["prompt_tokens"]), str(row["completion_tokens"]),
                      str(row["total_tokens"]), usd(row["cost_usd"]),
                      str(row["estimated_requests"]))
    out.print(table)


@db_cli.command("upgrade")
def db_upgrade(config: ConfigOption = None,
               state_dir: StateDirOption = DEFAULT_STATE_DIR) -> None:
    """Apply the schema migrations to the configured database, and say what changed."""
    settings = _load(config, state_dir)

    async def upgrade(database: Database) -> tuple[str | None, str | None]:
        return await database.upgrade()
    before, after = _run(settings, upgrade, is_upgrade=True)
    if before == after:
        err.print(f"The database schema is already current (revision {after}).")
    else:
        err.print(f"Upgraded the database schema from {before or 'empty'} to {after}.")
