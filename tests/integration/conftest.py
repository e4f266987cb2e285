"""Fixtures shared by the in-process integration tests: a recording upstream and an admin caller."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from rolegate.authn.dev_issuer import DevIssuer
from tests.support.gateways import bearer
from tests.support.servers import RecordingUpstream


@pytest.fixture
async def upstream() -> AsyncIterator[RecordingUpstream]:
    async with RecordingUpstream() as server:
        yield server


@pytest.fixture
def admin(dev_issuer: DevIssuer) -> dict[str, str]:
    """Authorization headers of a caller holding the embedded admin role."""
    return bearer(dev_issuer.mint(subject="ops", roles=("rolegate.admin",)))
