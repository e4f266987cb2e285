"""`rolegate audit verify` and `rolegate audit export`: the audit log, read from the configured
database (or, for `verify --file`, from its JSON-lines mirror or an export)."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TextIO, TypeVar

import typer
from sqlalchemy.exc import SQLAlchemyError

from rolegate.accounting.period import parse_instant
from rolegate.audit.chain import AuditEntry, ChainBreak, first_break
from rolegate.audit.store import PAGE, AuditStore
from rolegate.cli.options import (
    DEFAULT_STATE_DIR, ConfigOption, StateDirOption, err, out, settings_for,
)
from rolegate.config.model import Settings
from rolegate.storage.database import Database

T = TypeVar("T")
audit_cli = typer.Typer(no_args_is_help=True,
                        help="The audit log: check its hash chain, export it.")


@audit_cli.command("verify")
def verify(config: ConfigOption = None, state_dir: StateDirOption = DEFAULT_STATE_DIR,
           file: Annotated[Path | None, typer.Option(
               "--file", help="Check this JSON-lines file (the mirror, or a full export) "
               "instead of the database.")] = None) -> None:
    """Check the chain from its first entry; exit 1 naming the first broken entry."""
    if file is not None:
        try:
            with file.open(encoding="ascii") as lines:
                walk = _Walk()
                for line in lines:
                    if line.strip() and walk.add(AuditEntry.from_json(line)):
                        break
                checked = walk.finish()
        except (OSError, ValueError, KeyError) as exc:
            err.print(f"[red]{file} could not be read: {exc}[/red]")
            raise typer.Exit(1) from None
    else:
        settings = settings_for(config, state_dir=state_dir)

        async def read(store: AuditStore) -> tuple[int, ChainBreak | None]:
            walk = _Walk()
            async for entry in store.entries():
                if walk.add(entry):
                    break
            return walk.finish()
        checked = _with_store(settings, read)
    count, broken = checked
    if broken is not None:
        err.print(f"[red]The audit chain is broken at entry {broken.seq}: {broken.reason}."
                  "[/red]")
        raise typer.Exit(1)
    out.print(f"The audit chain holds: {count} entries.")


@audit_cli.command("export")
def export(since: Annotated[str | None, typer.Option(
               help="From this time: 7d, 24h, an ISO date or epoch seconds.")] = None,
           output: Annotated[Path | None, typer.Option(
               "--output", "-o", help="Write here instead of standard output.")] = None,
           config: ConfigOption = None, state_dir: StateDirOption = DEFAULT_STATE_DIR) -> None:
    """Write the entries as JSON lines, in chain order (each with its hashes)."""
    settings = settings_for(config, state_dir=state_dir)
    start = None
    if since is not None:
        try:
            start = parse_instant(since, time.time())
        except ValueError as exc:
            err.print(f"[red]--since: {exc}[/red]")
            raise typer.Exit(1) from None

    async def write(store: AuditStore, to: TextIO) -> int:
        count = 0
        async for entry in store.entries(since=start):
            to.write(entry.to_json() + "\n")
            count += 1
        return count
    if output is None:
        _with_store(settings, lambda store: write(store, sys.stdout))
        return
    with output.open("w", encoding="ascii") as file:
        count = _with_store(settings, lambda store: write(store, file))
    err.print(f"{count} entries written to {output}.")


class _Walk:
    """Checks a chain a page at a time, so a long log is never held in memory whole."""

    def __init__(self) -> None:
        self.count = 0
        self._page: list[AuditEntry] = []
        self._after: tuple[int, str] | None = None
        self.broken: ChainBreak | None = None

    def add(self, entry: AuditEntry) -> bool:
        """Take the next entry; True once the chain is found broken."""
        self._page.append(entry)
        return len(self._page) >= PAGE and self._check()

    def finish(self) -> tuple[int, ChainBreak | None]:
        if self.broken is None:
            self._check()
        return self.count, self.broken

    def _check(self) -> bool:
        self.broken = first_break(self._page, after=self._after)
        if self._page:
            self._after = (self._page[-1].seq, self._page[-1].hash)
        self.count += len(self._page)
        self._page = []
        return self.broken is not None


def _with_store(settings: Settings, work: Callable[[AuditStore], Awaitable[T]]) -> T:
    if settings.database.url is None:
        err.print("[red]No database is configured (database.url).[/red]")
        raise typer.Exit(1)

    async def session() -> T:
        database = Database(settings.database)
        try:
            if database.migrates_on_start:
                await database.upgrade()
            return await work(AuditStore(database.engine))
        finally:
            await database.close()
    try:
        return asyncio.run(session())
    except (SQLAlchemyError, OSError) as exc:
        err.print(f"[red]The database failed: {exc}[/red]")
        raise typer.Exit(1) from None
