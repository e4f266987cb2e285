"""`logging.format: json`: every line of the process is one JSON object: the access and decision
lines with their fields at the top level, other messages under `message`, a traceback as a
field, the server's and Python's warnings through the same handler."""

from __future__ import annotations

import io
import json
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from rolegate.observability.logging import (
    AccessLog, LineHandler, configure_logging, configure_process_logging,
)

OTHER_LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "py.warnings")


@pytest.fixture
def restored() -> Iterator[None]:
    """Whatever the test configures on the `rolegate`, root and server loggers is undone."""
    names = ("rolegate", *OTHER_LOGGERS)
    saved = {name: (logging.getLogger(name).handlers[:], logging.getLogger(name).level,
                    logging.getLogger(name).propagate) for name in names}
    yield
    logging.captureWarnings(False)
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_an_access_line_is_one_object_with_its_fields_at_the_top(restored: None):
    stream = io.StringIO()
    configure_logging("info", stream, log_format="json")
    AccessLog().record("r-1", "GET", "/v1/models", "info", 200, 0.002, {"model": "echo"})

    [line] = lines(stream)
    assert line["level"] == "INFO" and line["logger"] == "rolegate.access"
    assert line["time"].endswith("Z") and "T" in line["time"]
    assert (line["request_id"], line["status"], line["model"]) == ("r-1", 200, "echo")


def test_a_traceback_is_a_field_of_one_line(restored: None):
    stream = io.StringIO()
    configure_logging("info", stream, log_format="json")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("rolegate.gateway").exception("request %s failed", "r-2")

    assert len(stream.getvalue().splitlines()) == 1
    [line] = lines(stream)
    assert line["message"] == "request r-2 failed" and line["level"] == "ERROR"
    assert line["exception"].startswith("Traceback") and "ValueError: boom" in line["exception"]


def test_the_servers_lines_and_python_warnings_come_out_as_json_too(restored: None):
    stream = io.StringIO()
    configure_process_logging("info", "json", stream)
    logging.getLogger("uvicorn.error").error("[Errno 98] address already in use")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("something is deprecated", DeprecationWarning, stacklevel=1)
    logging.getLogger("some.library").warning("retrying")

    found = {(line["logger"], line["level"]) for line in lines(stream)}
    assert found == {("uvicorn.error", "ERROR"), ("py.warnings", "WARNING"),
                     ("some.library", "WARNING")}
    assert sum(isinstance(h, LineHandler) for h in logging.getLogger().handlers) == 1


def test_the_text_format_keeps_the_prefixed_lines(restored: None):
    stream = io.StringIO()
    configure_logging("info", stream, log_format="text")
    AccessLog().record("r-3", "GET", "/v1/models", "info", 200, 0.002, {})

    _date, _time, level, logger, message = stream.getvalue().split(" ", 4)
    assert (level, logger) == ("INFO", "rolegate.access")
    assert json.loads(message)["request_id"] == "r-3"
