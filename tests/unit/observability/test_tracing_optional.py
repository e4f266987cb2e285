"""OpenTelemetry is an optional extra: with tracing off, the gateway builds and serves without
importing it at all."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
sys.modules["opentelemetry"] = None  # any import of it now fails
import asyncio, httpx
from rolegate.app import build_app
from rolegate.config.defaults import embedded_settings

async def main():
    app = build_app(embedded_settings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://rolegate.test") as client:
        response = await client.get("/health/live")
    assert response.status_code == 200, response.text
asyncio.run(main())
print(sorted(name for name in sys.modules if name.startswith("opentelemetry")))
"""


def test_the_gateway_runs_without_opentelemetry_when_tracing_is_off():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            timeout=60, check=False)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['opentelemetry']"  # only the blocked entry itself
