"""`rolegate serve` as an operator meets it: the port it is given, the lines it prints (each one a
JSON object), the token command it prints, and a second `serve` on the same state directory."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.process import GatewayProcess, free_port

SERVE = [sys.executable, "-m", "rolegate", "serve"]


def read_records(process: subprocess.Popen[str], until: str,
                 timeout: float = 30.0) -> list[dict[str, Any]]:
    """The stderr lines of `process`, each parsed as JSON, up to one whose message has `until`."""
    assert process.stderr is not None
    records: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        records.append(json.loads(line))
        if until in records[-1].get("message", ""):
            return records
    raise AssertionError(f"no line with {until!r}: {records}")


def test_port_zero_listens_on_a_real_port_the_banner_command_works_and_stop_is_logged(
        tmp_path: Path):
    process = subprocess.Popen([*SERVE, "--port", "0", "--state-dir", "state"], cwd=tmp_path,
                               stderr=subprocess.PIPE, text=True)
    try:
        records = read_records(process, "try: curl")
        messages = [record["message"] for record in records if "message" in record]
        listening = next(m for m in messages if m.startswith("listening on http://"))
        url = listening.removeprefix("listening on ")
        port = int(url.rsplit(":", 1)[1])
        command = next(m for m in messages if "get a token with:" in m).split(": ", 1)[1]
        # As printed, from another directory: the state directory is absolute.
        token = subprocess.run(command, shell=True, cwd="/", capture_output=True, text=True,
                               check=True).stdout.strip()
        models = httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {token}"})
        process.send_signal(signal.SIGTERM)
        stopped = read_records(process, "stopped")
        assert process.wait(20) in (0, -signal.SIGTERM)
    finally:
        process.kill()
        process.wait()
        assert process.stderr is not None
        process.stderr.close()
    assert port > 0
    assert models.status_code == 200
    assert all({"time", "level", "logger"} <= record.keys() for record in records + stopped)
    assert stopped[-1]["logger"] == "rolegate.server"


def test_a_port_out_of_range_is_refused_before_anything_starts(tmp_path: Path):
    result = subprocess.run([*SERVE, "--port", "99999", "--state-dir", "state"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)

    assert result.returncode == 2
    assert "--port" in result.stderr and "65535" in result.stderr
    assert not (tmp_path / "state").exists()


async def test_a_second_serve_on_the_same_state_directory_leaves_the_running_key_alone(
        tmp_path: Path):
    async with GatewayProcess(None, tmp_path) as gateway:
        key_file = tmp_path / "state" / "dev-issuer.json"
        key = key_file.read_bytes()
        second = subprocess.run([*SERVE, "--port", str(free_port()), "--state-dir", "state"],
                                cwd=tmp_path, capture_output=True, text=True, timeout=60)
        token = subprocess.run([sys.executable, "-m", "rolegate", "dev-token", "--state-dir",
                                "state"], cwd=tmp_path, capture_output=True, text=True,
                               check=True).stdout.strip()
        async with httpx.AsyncClient(base_url=gateway.url) as client:
            models = await client.get("/v1/models", headers={"Authorization": f"Bearer {token}"})

    [refusal] = [json.loads(line) for line in second.stderr.splitlines()]
    assert second.returncode == 1
    assert refusal["level"] == "ERROR" and "Another `rolegate serve`" in refusal["message"]
    assert "--state-dir" in refusal["message"]
    assert key_file.read_bytes() == key
    assert models.status_code == 200


def test_the_servers_own_error_is_a_json_line_too(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([*SERVE, "--port", str(port), "--state-dir", "state"],
                                cwd=tmp_path, capture_output=True, text=True, timeout=60)

    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert result.returncode == 3
    errors = [record for record in records if record["level"] == "ERROR"]
    assert [record["logger"] for record in errors] == ["uvicorn.error"]
    assert "address already in use" in errors[0]["message"].lower()


def test_a_secret_file_that_cannot_be_read_ends_serve_with_one_error_line(tmp_path: Path):
    config = tmp_path / "rolegate.yaml"
    config.write_text("keys: {enabled: true, pepper_file: /nonexistent/pepper}\n"
                      "models: [{name: echo, provider: mock}]\npolicy: []\n")
    result = subprocess.run([*SERVE, "--config", str(config), "--port", "0",
                             "--workers", "2"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)

    [line] = [json.loads(line) for line in result.stderr.splitlines()]
    assert result.returncode == 1
    assert line["level"] == "ERROR" and "keys.pepper_file: cannot read it" in line["message"]


def test_a_configuration_with_problems_ends_serve_with_one_json_error_line(tmp_path: Path):
    """The problems are one log line in the default format (JSON): every line `serve` writes is
    one an operator's log pipeline can parse, the refusal to start included."""
    config = tmp_path / "rolegate.yaml"
    config.write_text("models:\n  - name: echo\n    provider: nope\npolicy: []\n")
    result = subprocess.run([*SERVE, "--config", str(config), "--port", "0"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)

    [line] = [json.loads(line) for line in result.stderr.splitlines()]
    assert result.returncode == 1 and result.stdout == ""
    assert line["level"] == "ERROR"
    assert "rolegate.yaml:3:5: models[0].provider: Input should be" in line["message"]
