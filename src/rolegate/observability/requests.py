"""`RequestObserver`: what happens at the edges of every request besides answering it.

At the start: a request id (the caller's `x-request-id` when it is a short safe token, else a new
one). At the end, once whatever the outcome: one access-log line and the request metrics. For a
request refused with 401: a `rolegate.decision` line and `rolegate_authn_failures_total`.

>>> observer = RequestObserver(metrics, AccessLog(), DecisionLog())
>>> request.request_id = accepted_request_id(request.headers.get(b"x-request-id"))
>>> started = observer.timer()
>>> ... ; observer.finish(request, status, started)
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from typing import Any, Protocol

from rolegate.errors import Unauthenticated
from rolegate.observability.logging import AccessLog, DecisionLog
from rolegate.observability.metrics import NONE, GatewayMetrics

# Safe to echo in a header, to pass upstream and to write to a log line unescaped.
_SAFE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")
# Request ids need to be unique, not secret: a generator seeded from the OS once per process
# makes one without a system call per request.
_new_ids = random.Random()


def accepted_request_id(incoming: bytes | None) -> str:
    """The caller's request id when it is a safe short token; otherwise a new random one."""
    if incoming is not None and _SAFE_REQUEST_ID.fullmatch(incoming):
        return incoming.decode("ascii")
    return f"{_new_ids.getrandbits(64):016x}"


class Request(Protocol):
    """What the observer reads of a request (the server's `Request` is one)."""

    request_id: str
    method: str
    path: str
    state: dict[str, Any]


class RequestObserver:
    def __init__(self, metrics: GatewayMetrics | None, access: AccessLog,
                 decisions: DecisionLog, timer: Callable[[], float] = time.perf_counter) -> None:
        self._metrics = metrics
        self._access = access
        self._decisions = decisions
        self.timer = timer

    def refused(self, request: Request, error: Unauthenticated) -> None:
        """A 401: logged as a denial with its code, and counted."""
        request.state["code"] = error.code
        self._decisions.record_refusal(request.request_id, request.method, request.path,
                                       error.code)
        if self._metrics is not None:
            self._metrics.count_authn_failure(error.code)

    def finish(self, request: Request, status: int, started: float) -> None:
        seconds = self.timer() - started
        state = request.state
        route_group = state.get("route_group", NONE)
        if self._metrics is not None:
            self._metrics.observe_request(route_group, state.get("model"), status, seconds)
        if self._access.is_enabled:
            self._access.record(request.request_id, request.method, request.path, route_group,
                                status, seconds, state)
