"""The admin API against a schema-driven fuzzer: schemathesis reads `/admin/openapi.json` from
rolegate running as a real process (SQLite and PostgreSQL behind it) and runs every check,
stateful links included (create a key, then get, update and revoke it by its id). No answer may
be a server error or stray from the document.

The number of examples per operation is small by default; `SCHEMATHESIS_EXAMPLES=300` (say) runs
longer, and `SCHEMATHESIS_SEED` draws other cases than the default seed's.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rolegate.config.model import DatabaseConfig
from tests.e2e.test_keys_and_limits_processes import ENV, config, rolegate
from tests.support.process import GatewayProcess
from tests.support.storage import POSTGRES_URL, _execute, run_apart

pytestmark = pytest.mark.e2e
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "15"))
SEED = os.environ.get("SCHEMATHESIS_SEED", "1")
SCHEMATHESIS = Path(sys.executable).with_name("st")


async def run_schemathesis(url: str, admin_key: str, report: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        str(SCHEMATHESIS), "run", f"{url}/admin/openapi.json", "--checks", "all",
        # DELETE revokes: the record stays, answered with its `revoked_at`, for audit.
        "--exclude-checks", "use_after_free",
        "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", str(EXAMPLES),
        "--header", f"Authorization: Bearer {admin_key}", "--seed", SEED, "--workers", "1",
        "--generation-database", "none", "--suppress-health-check", "all",
        "--no-color", "--output-sanitize", "false",
        "--report", "json", "--report-json-path", str(report),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=report.parent)
    out, _ = await asyncio.wait_for(process.communicate(), 60 + EXAMPLES * 10)
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace")


@pytest.mark.timeout(120 + EXAMPLES * 12)
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_the_admin_api_has_no_server_error_nor_schema_violation(
        tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> None:
    database = ("{url: 'sqlite+aiosqlite:///rolegate.db'}" if backend == "sqlite"
                else request.getfixturevalue("postgres_database"))
    text = config(database)
    (tmp_path / "rolegate.yaml").write_text(text)
    await rolegate(tmp_path / "rolegate.yaml", "db", "upgrade")
    admin = await rolegate(tmp_path / "rolegate.yaml", "keys", "create", "--name", "fuzz",
                           "--owner", "ops", "--roles", "admin")
    async with GatewayProcess(text, tmp_path, env=ENV) as gateway:
        code, output = await run_schemathesis(gateway.url, admin, tmp_path / "report.json")
        log = gateway.log()

    report = json.loads((tmp_path / "report.json").read_text())
    print(f"schemathesis on {backend}: {report['test_cases']['generated']} cases, "
          f"{len(report['failures'])} failures, {len(report['errors'])} errors")
    assert code == 0, output[-30000:]
    assert report["failures"] == [] and report["errors"] == []
    assert report["test_cases"]["generated"] >= 8 * min(EXAMPLES, 10)
    assert report["phases"]["stateful"]["status"] == "success"
    assert "Traceback" not in log and " ERROR " not in log, log[-4000:]


@pytest.fixture
def postgres_database() -> Iterator[str]:
    schema = f"rg_fuzz_{os.getpid()}_{secrets.token_hex(3)}"
    yield f"{{url: '{POSTGRES_URL}', schema: {schema}}}"
    run_apart(_execute(DatabaseConfig(url=POSTGRES_URL),
                       f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
