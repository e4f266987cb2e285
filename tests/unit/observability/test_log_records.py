"""The access and decision lines are ordinary `LogRecord`s: any handler (a file, a collector,
pytest's) sees the same fields as for `logger.info`, with the time of the line."""

from __future__ import annotations

import json
import logging
import time

from rolegate.observability.logging import AccessLog

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
