"""What `rolegate serve --workers N` hands to its worker processes, and how they read it back.

Each worker is a fresh interpreter started by uvicorn, which imports an app factory; the parent
passes the command-line options through the environment (the only channel uvicorn leaves), and
the development issuer's key through the state directory, so every worker trusts the same key,
one key binding MCP sessions to their callers (`mcp/sessions.py`), and, when none is
configured (`console.session_secret`), one signing the console's sessions, so a browser signed
in at one worker is signed in at all of them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from rolegate.config.defaults import embedded_settings
from rolegate.config.load import DATABASE_FILE, load_settings, sqlite_url
from rolegate.config.model import Settings

_CONFIG = "ROLEGATE_SERVE_CONFIG"
_HOST = "ROLEGATE_SERVE_HOST"
_PORT = "ROLEGATE_SERVE_PORT"
_STATE_DIR = "ROLEGATE_SERVE_STATE_DIR"
_MCP_SESSION_KEY = "ROLEGATE_SERVE_MCP_SESSION_KEY"
SPOOL_DIR = "usage-spool"  # in the state directory, unless accounting.spool_dir says where
_CONSOLE_SESSION_KEY = "ROLEGATE_SERVE_CONSOLE_SESSION_KEY"
# prometheus-client's own switch to multiprocess mode, read when a worker first imports it
_METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"


@dataclass(frozen=True, slots=True)
class LaunchOptions:
    """`rolegate serve`'s options: the config file (None: embedded defaults) and overrides."""

    config: Path | None
    host: str | None
    port: int | None
    state_dir: Path | None
    # The key binding MCP sessions to their callers, one per `serve` (hex): every worker signs
    # and checks with it, so a session opened on one worker is good on the others.
    mcp_session_key: str | None = None
    # The console's session secret when none is configured, one per `serve` (hex), likewise.
    console_session_key: str | None = None
    metrics_dir: Path | None = None  # workers: where each writes its metric values

    def settings(self) -> Settings:
        """The settings these options describe; raises `ConfigError`. Without a configured
        database, the SQLite file lives in the state directory; so does the usage spool."""
        settings = load_settings(self.config) if self.config else embedded_settings()
        overrides = {key: value for key, value in (("host", self.host), ("port", self.port))
                     if value is not None}
        updates: dict[str, object] = {"server": settings.server.model_copy(update=overrides)}
        if settings.database.url is None and self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            url = sqlite_url((self.state_dir / DATABASE_FILE).resolve())
            updates["database"] = settings.database.model_copy(update={"url": url})
        if settings.accounting.spool_dir is None and self.state_dir is not None:
            spool = str((self.state_dir / SPOOL_DIR).resolve())
            updates["accounting"] = settings.accounting.model_copy(update={"spool_dir": spool})
        return settings.model_copy(update=updates)

    def export(self, environ: MutableMapping[str, str] | None = None) -> None:
        """Put these options where worker processes read them (`from_environ`)."""
        target = os.environ if environ is None else environ
        target[_CONFIG] = str(self.config.resolve()) if self.config else ""
        target[_HOST] = self.host or ""
        target[_PORT] = "" if self.port is None else str(self.port)
        target[_STATE_DIR] = str(self.state_dir.resolve()) if self.state_dir else ""
        target[_MCP_SESSION_KEY] = self.mcp_session_key or ""
        target[_CONSOLE_SESSION_KEY] = self.console_session_key or ""
        if self.metrics_dir is not None:
            target[_METRICS_DIR] = str(self.metrics_dir.resolve())

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> LaunchOptions:
        source = os.environ if environ is None else environ
        config, port = source.get(_CONFIG), source.get(_PORT)
        metrics_dir = source.get(_METRICS_DIR)
        return cls(config=Path(config) if config else None, host=source.get(_HOST) or None,
                   port=int(port) if port else None,
                   state_dir=Path(source.get(_STATE_DIR) or ".rolegate"),
                   mcp_session_key=source.get(_MCP_SESSION_KEY) or None,
                   console_session_key=source.get(_CONSOLE_SESSION_KEY) or None,
                   metrics_dir=Path(metrics_dir) if metrics_dir else None)
