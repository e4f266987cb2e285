"""`StateLock`: one running `rolegate serve` per state directory.

The state directory holds the development issuer's private key, written at start-up. A second
`serve` on the same directory (even one that then fails to bind its port) would replace the key
of the gateway already running, and the tokens `rolegate dev-token` mints would stop working
there. The lock is taken before anything is written and held until the process exits; the
kernel releases it when the process dies, however it dies, so a stale lock never blocks a start.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = "serve.lock"


class StateLocked(Exception):
    """Another process holds the state directory."""


class StateLock:
    """Held while the gateway runs: `StateLock.acquire(state_dir)`, raises `StateLocked`."""

    def __init__(self, descriptor: int, path: Path) -> None:
        self._descriptor = descriptor
        self.path = path

    @classmethod
    def acquire(cls, state_dir: Path) -> StateLock:
        state_dir.mkdir(parents=True, exist_ok=True)
        path = state_dir / LOCK_FILE
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(descriptor)
            raise StateLocked(
                f"Another `rolegate serve` (pid {holder}) is using the state directory "
                f"{state_dir}: stop it, or give this one its own --state-dir.") from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        return cls(descriptor, path)

    def release(self) -> None:
        if self._descriptor >= 0:
            os.close(self._descriptor)  # closing the descriptor releases the lock
            self._descriptor = -1
