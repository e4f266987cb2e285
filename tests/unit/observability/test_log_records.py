"""The access and decision lines are ordinary `LogRecord`s: any handler (a file, a collector,
pytest's) sees the same fields as for `logger.info`, with the time of the line."""

from __future__ import annotations

import io
import json
import logging
import re
import time

import pytest

from rolegate.observability.logging import AccessLog, configure_logging

FRAME_FIELDS = {"pathname", "filename", "module", "lineno", "funcName"}
TIME_FIELDS = {"created", "msecs", "relativeCreated"}


def test_an_access_line_is_a_record_like_logger_info_makes(caplog):
    with caplog.at_level(logging.INFO, logger="rolegate"):
        before = time.time()
        AccessLog().record("r-1", "POST", "/v1/chat/completions", "inference", 200, 0.001, {})
        logging.getLogger("rolegate.access").info("reference")
        after = time.time()
    ours, reference = caplog.records
    assert json.loads(ours.getMessage())["request_id"] == "r-1"
    assert (ours.name, ours.levelno, ours.levelname) == ("rolegate.access", logging.INFO, "INFO")
    assert set(ours.__dict__) == set(reference.__dict__)
    same = set(ours.__dict__) - FRAME_FIELDS - TIME_FIELDS - {"msg", "message"}
    assert {name: ours.__dict__[name] for name in same} == {
        name: reference.__dict__[name] for name in same}
    assert before <= ours.created <= after
    assert ours.msecs == int((ours.created % 1) * 1000)
    assert abs(ours.relativeCreated - reference.relativeCreated) < (after - before) * 1000 + 1


@pytest.fixture
def configured():
    """`configure_logging` into a string, undone afterwards (it reconfigures `rolegate`)."""
    root = logging.getLogger("rolegate")
    saved = root.handlers[:], root.level, root.propagate
    stream = io.StringIO()
    configure_logging("info", stream)
    yield stream
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    root.propagate = saved[2]


LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO rolegate\.access (\{.*\})")


def test_with_the_gateways_own_handler_a_line_reads_as_a_record_would(configured):
    AccessLog().record("r-2", "GET", "/v1/models", "info", 200, 0.002, {})
    logging.getLogger("rolegate.access").info('{"reference":true}')
    ours, reference = configured.getvalue().splitlines()
    assert json.loads(LINE.fullmatch(ours).group(1))["request_id"] == "r-2"
    assert LINE.fullmatch(reference)


def test_a_filter_sees_every_line_as_a_record(configured):
    seen: list[logging.LogRecord] = []

    def keep(record: logging.LogRecord) -> bool:
        seen.append(record)
        return "hide-me" not in record.getMessage()
    handler = logging.getLogger("rolegate").handlers[0]
    handler.addFilter(keep)
    try:
        AccessLog().record("hide-me", "GET", "/v1/models", "info", 200, 0.002, {})
        AccessLog().record("show-me", "GET", "/v1/models", "info", 200, 0.002, {})
    finally:
        handler.removeFilter(keep)
    assert [json.loads(record.getMessage())["request_id"] for record in seen] == [
        "hide-me", "show-me"]
    assert "show-me" in configured.getvalue() and "hide-me" not in configured.getvalue()
