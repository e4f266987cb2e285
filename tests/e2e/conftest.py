"""Fixtures for tests that run rolegate as a real process: a recording upstream shared by a
module (it lives in the module's event loop), cleared before each test, and an identity
provider publishing the module's `KEY`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.support.servers import LocalIdp, RecordingUpstream


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_upstream() -> AsyncIterator[RecordingUpstream]:
    async with RecordingUpstream() as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def idp(request: pytest.FixtureRequest) -> AsyncIterator[LocalIdp]:
    """A local identity provider whose key set holds the test module's `KEY`."""
    async with LocalIdp(request.module.KEY) as server:
        yield server


@pytest.fixture
def upstream(shared_upstream: RecordingUpstream) -> RecordingUpstream:
    shared_upstream.requests.clear()
    shared_upstream.pacer = None
    shared_upstream.stream_chunks = 3
    shared_upstream.break_after = None
    return shared_upstream


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    return tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
