"""`rolegate serve`'s start-up: the state-directory lock, the database pre-flight, uvicorn run
with our own protocol and logging, and the lines an operator reads: where the gateway listens,
how to get a development token, and that it stopped."""

from __future__ import annotations

import asyncio
import logging
import shlex
import shutil
import socket
import sys
from pathlib import Path
from typing import Any, NoReturn, cast

import typer
import uvicorn
from sqlalchemy.exc import SQLAlchemyError

from rolegate.app import dev_issuer_url
from rolegate.authn.dev_issuer import DevIssuer
from rolegate.config.model import Settings
from rolegate.server.heap import freeze_startup_heap
from rolegate.server.protocol import bounded_protocol
from rolegate.server.state_lock import StateLock, StateLocked
from rolegate.storage.database import Database, SchemaBehind, first_line

log = logging.getLogger("rolegate.server")
_WILDCARDS = {"0.0.0.0", "::", ""}  # compared with, never bound


def uvicorn_config(app: Any, settings: Settings, workers: int) -> uvicorn.Config:
    """uvicorn's settings for `app` (an ASGI app, or the workers' factory's import string).

    loop "auto" picks uvloop (installed with uvicorn[standard]); the HTTP protocol is uvicorn's
    httptools one with header size, header and body time bounded (server/protocol.py). No
    proxy-header rewriting (nothing reads the client address) and no Server header. Logging is
    ours (`configure_logging`): `log_config=None` keeps uvicorn from replacing its handlers.
    """
    limits = settings.server
    http = bounded_protocol(max_header_bytes=limits.max_header_bytes,
                            header_timeout=limits.header_timeout,
                            body_timeout=limits.body_timeout)
    return uvicorn.Config(
        app, host=limits.host, port=limits.port, log_level="warning", access_log=False,
        log_config=None, lifespan="on", loop="auto",
        # uvicorn calls `http` as a protocol factory; its annotation only names classes.
        http=cast("type[asyncio.Protocol]", http), proxy_headers=False, server_header=False,
        factory=isinstance(app, str), workers=workers,
        # Annotated `int` by uvicorn, which only hands it to `loop.call_later` (float seconds).
        timeout_keep_alive=limits.keep_alive_timeout,  # type: ignore[arg-type]
    )


class _Server(uvicorn.Server):
    """uvicorn's server, freezing the start-up heap (`server/heap.py`) and announcing the
    address it really listens on once it does."""

    def __init__(self, config: uvicorn.Config, announce: Announce) -> None:
        super().__init__(config)
        self._announce = announce

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:  # the app and its lifespan start-up are done: serving from now on
            freeze_startup_heap()
        if self.started and sockets is None:  # a worker's sockets were announced by its parent
            listeners = [sock for server in self.servers for sock in server.sockets]
            self._announce.listening(listeners[0])

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        # Here rather than after `run()`: uvicorn re-raises the stopping signal once it returns.
        if sockets is None:
            self._announce.stopped()


class Announce:
    """The lines `serve` writes: listening (with the bound address), the development-token
    commands (when the development issuer is on), stopped."""

    def __init__(self, state_dir: Path | None) -> None:
        self._state_dir = state_dir

    def listening(self, sock: socket.socket) -> None:
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        log.info("listening on http://%s:%d", shown, port)
        if self._state_dir is None:
            return
        local = "127.0.0.1" if host in _WILDCARDS else shown
        token = f"{_program()} dev-token --state-dir {shlex.quote(str(self._state_dir))}"
        log.info("development issuer on; get a token with: %s", token)
        log.info("try: curl -H \"Authorization: Bearer $(%s)\" http://%s:%d/v1/models",
                 token, local, port)

    def stopped(self) -> None:
        log.info("stopped")
        _flush()  # now: the process may end by the re-raised signal, before the loop's next turn


def _program() -> str:
    """How to run rolegate again from a shell, as this process was started."""
    argv0 = Path(sys.argv[0])
    if argv0.name == "rolegate":
        on_path = shutil.which("rolegate")
        if on_path is not None and Path(on_path).resolve() == argv0.resolve():
            return "rolegate"
        return shlex.quote(str(argv0.resolve()))
    return f"{shlex.quote(sys.executable)} -m rolegate"


def run(config: uvicorn.Config, announce: Announce) -> None:
    """Serve until stopped (SIGINT/SIGTERM); the `stopped` line is written once the server has
    drained."""
    if config.workers > 1:
        from uvicorn.supervisors import Multiprocess

        sock = config.bind_socket()
        announce.listening(sock)
        Multiprocess(config, sockets=[sock]).run()
        announce.stopped()
        return
    server = _Server(config, announce)
    server.run()
    if not server.started:  # could not bind, or the app failed to start (both logged)
        raise typer.Exit(3)


def fail(message: str) -> NoReturn:
    """End `serve` before it serves: the reason as an error log line (one JSON object in the
    `json` format), exit status 1."""
    log.error("%s", message)
    _flush()
    raise typer.Exit(1)


def crash() -> NoReturn:
    """End `serve` on an unexpected failure: one error line with the traceback as a field (one
    JSON object in the `json` format), exit status 1."""
    log.exception("rolegate serve failed")
    _flush()
    raise typer.Exit(1)


def claim_state(settings: Settings, state_dir: Path) -> tuple[DevIssuer | None, StateLock | None]:
    """With the development issuer on: lock the state directory (held until the process
    exits, so another `serve` cannot replace the key in use here), then make and save the key."""
    if not settings.auth.dev_issuer.enabled:
        return None, None
    try:
        lock = StateLock.acquire(state_dir)
    except StateLocked as exc:
        fail(str(exc))
    dev = settings.auth.dev_issuer
    issuer = DevIssuer.generate(dev_issuer_url(settings), dev.audience, dev.token_ttl)
    issuer.save(state_dir)
    return issuer, lock


def check_schema(settings: Settings, config: Path | None, workers: int = 1) -> None:
    """Refuse to serve on a database whose schema is not the one this version needs, unless
    the gateway migrates it at start-up (`database.migrate_on_start`). With several workers
    that migration runs here, once, before they start: workers migrating one database at the
    same moment would race (both creating the schema, one failing), and each then finds it
    current."""
    if settings.database.url is None:
        return
    database = Database(settings.database)
    if database.migrates_on_start and workers == 1:
        asyncio.run(database.close())
        return

    async def prepare() -> None:
        try:
            if database.migrates_on_start:
                await database.upgrade()
            else:
                await database.verify_schema()
        finally:
            await database.close()
    try:
        asyncio.run(prepare())
    except SchemaBehind as exc:
        upgrade = "rolegate db upgrade" + (f" --config {shlex.quote(str(config))}"
                                           if config else "")
        fail(f"{exc}: run `{upgrade}` first, or set database.migrate_on_start: true.")
    except (SQLAlchemyError, OSError) as exc:
        fail(f"The database cannot be reached: {first_line(exc)}")


def _flush() -> None:
    for handler in logging.getLogger("rolegate").handlers:
        handler.flush()
