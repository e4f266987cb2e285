"""Structured logging: one JSON line per request (`rolegate.access`), one per authentication
failure and authorization decision (`rolegate.decision`), and the process log set-up.

Only identifiers leave the gateway in logs: never a token, a key or a request body.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TextIO

import orjson

from rolegate.authn.principal import Principal
from rolegate.authz.model import Action, Decision
from rolegate.observability.matches import RuleMatches


class _LineLogger:
    """Hands JSON lines to one logger's handlers at INFO, as `logger.info` would, but cheaper.
    When the line would reach exactly one handler, the process's own `LineHandler` (as
    `configure_logging` sets up), it is formatted and handed over without a `LogRecord`;
    otherwise (a handler of another kind, a filter, pytest's capture) each record is a copy of
    a template made once, so neither the caller's frame nor the file name is looked up per line
    (the lines are built here, so the caller's file and line are never shown). The caller
    checks `is_enabled` first."""

    def __init__(self, name: str) -> None:
        self.logger = logging.getLogger(name)
        self._template = dict(logging.LogRecord(name, logging.INFO, __file__, 0, "", (),
                                                None).__dict__)

    @property
    def is_enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def write(self, line: dict[str, Any]) -> None:
        message = orjson.dumps(line).decode()
        created = time.time()
        handler = self._only_handler()
        if handler is not None:
            handler.add_line(created, "INFO", self.logger.name, message)
            return
        record = logging.LogRecord.__new__(logging.LogRecord)
        fields = record.__dict__
        fields.update(self._template)
        template_created = fields["created"]
        fields["created"] = created
        fields["msecs"] = int((created - int(created)) * 1000) + 0.0
        fields["relativeCreated"] += (created - template_created) * 1000
        fields["msg"] = message
        self.logger.handle(record)

    def _only_handler(self) -> LineHandler | None:
        """The `LineHandler` an INFO record would reach, when it is the only handler it would
        reach and no filter could change that; else None."""
        found: LineHandler | None = None
        logger: logging.Logger | None = self.logger
        while logger is not None:
            if logger.filters:
                return None
            for handler in logger.handlers:
                if (found is not None or not isinstance(handler, LineHandler)
                        or handler.filters or handler.level > logging.INFO
                        or not handler.is_line_format):
                    return None
                found = handler
            if not logger.propagate:
                break
            logger = logger.parent
        return found


class DecisionLog:
    """Writes each decision to the `rolegate.decision` logger as one JSON object, and keeps the
    last `keep_denials` denials (401 and 403, with the time) in memory for the console, whether
    or not the log is on; with `matches`, it counts which principals each rule granted."""

    def __init__(self, *, is_enabled: bool = True, keep_denials: int = 0,
                 clock: Callable[[], float] = time.time,
                 matches: RuleMatches | None = None) -> None:
        self._lines = _LineLogger("rolegate.decision")
        self._is_enabled = is_enabled
        self.denials: deque[dict[str, Any]] = deque(maxlen=keep_denials)
        self.matches = matches
        self._clock = clock

    def _is_writing(self) -> bool:
        return self._is_enabled and self._lines.is_enabled

    def _kept(self, line: dict[str, Any]) -> None:
        if self.denials.maxlen:
            self.denials.append({**line, "at": self._clock()})

    def record(self, request_id: str, who: Principal, action: Action, decision: Decision) -> None:
        if decision.allowed and decision.rule is not None and self.matches is not None:
            self.matches.record(decision.rule, who)
        if decision.allowed and not self._is_writing():
            return
        line = {
            "event": "authz", "request_id": request_id, "issuer": who.issuer,
            "subject": who.subject, "client_id": who.client_id, "key_id": who.key_id,
            "end_user": who.end_user, "route": action.route, "path": action.path,
            "model": action.model, "decision": "allow" if decision.allowed else "deny",
            "rule": decision.rule, "code": decision.code,
        }
        if not decision.allowed:
            line["reason"] = decision.reason
            self._kept(line)
        if self._is_writing():
            self._lines.write(line)

    def record_refusal(self, request_id: str, method: str, path: str, code: str) -> None:
        """A request refused with 401. Only the error code says why: the message could quote
        what the caller sent (an issuer, a header's length), and the credential never appears."""
        line = {"event": "authn", "request_id": request_id, "method": method,
                "path": _bounded(path), "decision": "deny", "code": code}
        self._kept(line)
        if self._is_writing():
            self._lines.write(line)


MAX_LOGGED_PATH = 512


def _bounded(path: str) -> str:
    return path if len(path) <= MAX_LOGGED_PATH else path[:MAX_LOGGED_PATH] + "..."


class AccessLog:
    """Writes one JSON object per request to the `rolegate.access` logger, when it ended."""

    def __init__(self, *, is_enabled: bool = True) -> None:
        self._lines = _LineLogger("rolegate.access")
        self._is_enabled = is_enabled

    @property
    def is_enabled(self) -> bool:
        return self._is_enabled and self._lines.is_enabled

    def record(self, request_id: str, method: str, path: str, route_group: str | None,
               status: int, seconds: float, state: dict[str, Any]) -> None:
        """`state` is the request's: `principal`, `model`, `served_model`, `deployment`,
        `attempts`, `cause` (why the last failed upstream attempt failed) and `code` (the
        error code) when they are known."""
        line: dict[str, Any] = {
            "event": "request", "request_id": request_id, "method": method,
            "path": _bounded(path), "route_group": route_group, "status": status,
            "duration_ms": round(seconds * 1000, 3),
        }
        who: Principal | None = state.get("principal")
        if who is not None:
            line.update(issuer=who.issuer, subject=who.subject, client_id=who.client_id,
                        key_id=who.key_id)
        for name in ("model", "served_model", "deployment", "attempts", "cause", "code"):
            value = state.get(name)
            if value is not None:
                line[name] = value
        self._lines.write(line)


def configure_logging(level: str, stream: TextIO | None = None, *,
                      log_format: str = "text") -> LineHandler:
    """Write the `rolegate` loggers to `stream` (stderr), one line per record.

    Written inline on purpose: handing records to a writer thread through a queue was measured
    (bench/micro, and the gateway under wrk) to cost more CPU per request than it saved, because
    every record wakes the thread and moves the GIL. Records skip the thread and process names
    the format never shows. The lines of one turn of the event loop leave in one write
    (`LineHandler`).
    """
    handler = LineHandler(stream or sys.stderr)
    handler.setFormatter(JsonLineFormatter() if log_format == "json"
                         else LineFormatter(LINE_FORMAT))
    root = logging.getLogger("rolegate")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    return handler


def configure_process_logging(level: str, log_format: str,
                              stream: TextIO | None = None) -> LineHandler:
    """`configure_logging`, and every other line of the process in the same format through the
    same handler: the server's (`uvicorn.*`, which `log_config=None` leaves to us), other
    libraries' warnings and errors, and Python's warnings."""
    handler = configure_logging(level, stream, log_format=log_format)
    root = logging.getLogger()
    root.handlers[:] = [existing for existing in root.handlers
                        if not isinstance(existing, LineHandler)] + [handler]
    if root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        server = logging.getLogger(name)
        server.handlers[:] = []
        server.propagate = True
    logging.captureWarnings(True)
    return handler


class LineHandler(logging.StreamHandler[TextIO]):
    """A `StreamHandler` that formats each record at once but writes the lines of one turn of
    the event loop together, at the start of the next turn: under load, the access and decision
    lines of every request answered in a turn cost one system call rather than two per request,
    and a line is still out microseconds after it was logged. Outside a running loop (start-up,
    other threads) a line is written at once."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._pending: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop lines were last added on
        self._loop_thread = 0  # and the thread it runs in
        self._is_flush_scheduled = False

    @property
    def is_line_format(self) -> bool:
        return isinstance(self.formatter, LineFormatter) and self.formatter.is_line_format

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # as logging.StreamHandler does: a bad record never breaks a request
            self.handleError(record)
            return
        self._add(line)

    def add_line(self, created: float, level: str, name: str, message: str) -> None:
        """A line as `emit` would write it for a record of these fields, without the record.
        Only when `is_line_format`."""
        assert isinstance(self.formatter, LineFormatter)
        line = self.formatter.line(created, level, name, message)
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            self._add(line)

    def _add(self, line: str) -> None:
        self._pending.append(line + self.terminator)
        loop = self._loop
        if loop is not None and loop.is_running() and self._loop_thread == threading.get_ident():
            if self._is_flush_scheduled:
                return
        else:  # looked up only when the loop changes: on Python 3.11 it costs a system call
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop in this thread: write at once
                self._write_pending()
                return
            self._loop, self._loop_thread = loop, threading.get_ident()
        self._is_flush_scheduled = True
        loop.call_soon(self.flush)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            self._is_flush_scheduled = False
            self._write_pending()

    def _write_pending(self) -> None:
        text = "".join(self._pending)
        self._pending.clear()
        try:
            if text:
                self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # the stream is gone (a closed pipe, at exit): drop them
            pass


LINE_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class LineFormatter(logging.Formatter):
    """`logging.Formatter` with the same output, but the date and time formatted once per
    second rather than once per record (the decision log writes a line per request), and a
    record with no traceback or stack put together directly when the format is LINE_FORMAT."""

    default_msec_format: str = logging.Formatter.default_msec_format or "%s,%03d"

    def __init__(self, fmt: str) -> None:
        super().__init__(fmt)
        self._second = -1
        self._stamp = ""
        self.is_line_format = fmt == LINE_FORMAT

    def format(self, record: logging.LogRecord) -> str:
        if not self.is_line_format or record.exc_info or record.exc_text or record.stack_info:
            return super().format(record)
        record.message = message = record.getMessage()
        record.asctime = stamp = self.formatTime(record)
        return f"{stamp} {record.levelname} {record.name} {message}"

    def line(self, created: float, level: str, name: str, message: str) -> str:
        """The line of a record of these fields with no traceback (`is_line_format` only)."""
        return f"{self.stamp(created)} {level} {name} {message}"

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        return self.stamp(record.created, record.msecs)

    def stamp(self, created: float, msecs: float | None = None) -> str:
        """The date and time as `formatTime` shows them, for a record created at `created`."""
        second = int(created)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime(self.default_time_format, self.converter(created))
        if msecs is None:
            msecs = int((created - second) * 1000)
        return self.default_msec_format % (self._stamp, msecs)


class JsonLineFormatter(LineFormatter):
    """Each record as one JSON object on one line: `time` (UTC, ISO 8601), `level`, `logger`,
    then the fields of a line that is a JSON object already (the access and decision lines) or
    `message`, and `exception` (the traceback, its newlines escaped) when there is one.

    The access and decision lines skip the record and `orjson` here: their JSON is spliced in
    after the three leading fields (`line`), as cheap as the text format."""

    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"
    def __init__(self) -> None:
        super().__init__(LINE_FORMAT)
        self.converter = time.gmtime

    def line(self, created: float, level: str, name: str, message: str) -> str:
        head = f'{{"time":"{self.stamp(created)}","level":"{level}","logger":"{name}"'
        return head + ("," + message[1:] if len(message) > 2 else "}")

    def format(self, record: logging.LogRecord) -> str:
        record.message = message = record.getMessage()
        if _is_json_line(record) and not record.exc_info:
            return self.line(record.created, record.levelname, record.name, message)
        fields: dict[str, Any] = {"time": self.stamp(record.created, record.msecs),
                                  "level": record.levelname, "logger": record.name,
                                  "message": message}
        if record.exc_info:
            record.exc_text = record.exc_text or self.formatException(record.exc_info)
        if record.exc_text:
            fields["exception"] = record.exc_text
        if record.stack_info:
            fields["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(fields, default=str).decode()


def _is_json_line(record: logging.LogRecord) -> bool:
    """A record `_LineLogger` made (line 0 of this file): its message is a JSON object."""
    return record.lineno == 0 and record.pathname == __file__
