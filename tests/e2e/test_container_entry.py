"""The container image's entry command, run outside a container: the Dockerfile's ENTRYPOINT and
CMD serve the embedded defaults, and its HEALTHCHECK command passes once `/health/ready` does.

The commands are read from the Dockerfile itself, so the image and this test cannot drift; only
the image's paths are mapped to this checkout's (its virtualenv for /opt/rolegate, a temporary
directory for /var/lib/rolegate) and its port to a free one. compose.yaml's configuration is
checked as `rolegate check` would check it."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from rolegate.config.load import parse_settings
from tests.support.process import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
IMAGE_PREFIX = "/opt/rolegate"
STATE_DIR = "/var/lib/rolegate"
IMAGE_PORT = "8080"


def final_stage(dockerfile: Path) -> dict[str, str]:
    """Each instruction of the last stage (continuation lines joined), last one wins."""
    text = re.sub(r"\\\n\s*", "", dockerfile.read_text(encoding="utf-8"))
    stage: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        instruction, _, rest = line.strip().partition(" ")
        if instruction.upper() == "FROM":
            stage = {}
        stage[instruction.upper()] = rest.strip()
    return stage


def exec_form(value: str) -> list[str]:
    """An instruction's JSON (exec) form: shell form would need a shell in the image."""
    assert value.startswith("["), f"use the exec form: {value}"
    words = json.loads(value)
    assert isinstance(words, list) and all(isinstance(word, str) for word in words)
    return words


def on_this_machine(words: list[str], state: Path, port: int) -> list[str]:
    mapped = []
    for word in words:
        word = word.replace(f"{IMAGE_PREFIX}/bin/", f"{sys.prefix}/bin/")
        word = word.replace(STATE_DIR, str(state)).replace(f":{IMAGE_PORT}/", f":{port}/")
        mapped.append(str(port) if word == IMAGE_PORT else word)
    return mapped


def image_environment(instruction: str) -> dict[str, str]:
    """This environment plus the image's `ENV key=value ...` ($PATH expanded, paths mapped)."""
    environ = dict(os.environ)
    for pair in shlex.split(instruction):
        key, _, value = pair.partition("=")
        value = value.replace("$PATH", os.environ.get("PATH", ""))
        environ[key] = value.replace(f"{IMAGE_PREFIX}/bin", f"{sys.prefix}/bin")
    return environ


def healthcheck_passes(command: list[str]) -> bool:
    return subprocess.run(command, capture_output=True, timeout=10).returncode == 0


def test_the_images_entry_command_serves_and_its_healthcheck_passes(tmp_path: Path) -> None:
    stage = final_stage(ROOT / "Dockerfile")
    user = stage["USER"].split(":")[0]
    assert user not in ("", "0", "root"), "the image must not run as root"
    healthcheck = stage["HEALTHCHECK"]
    assert "/health/ready" in healthcheck
    check_words = exec_form(healthcheck[healthcheck.index("CMD ") + 4:])
    state, port = tmp_path / "state", free_port()
    command = on_this_machine(exec_form(stage["ENTRYPOINT"]) + exec_form(stage["CMD"]),
                              state, port)
    check = on_this_machine(check_words, state, port)
    assert STATE_DIR in stage["WORKDIR"] and "--state-dir" in command

    assert not healthcheck_passes(check), "the health check passed with nothing listening"
    tmp_path.joinpath("workdir").mkdir()
    environ = image_environment(stage["ENV"])
    assert environ["PYTHONDONTWRITEBYTECODE"] == "1", "no bytecode written on a read-only root"
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=tmp_path / "workdir", env=environ,
                                   stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not healthcheck_passes(check):
            assert process.poll() is None, f"the entry command exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"never healthy:\n{log.read_text()}"
            time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(timeout=15)
    assert (state / "rolegate.db").exists(), "the state directory holds the database"
    assert list((tmp_path / "workdir").iterdir()) == [], "nothing written outside the state dir"


def test_compose_runs_a_valid_configuration_with_postgres_and_redis() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    service = compose["services"]["rolegate"]
    assert service["read_only"] is True
    assert {"postgres", "redis"} <= set(compose["services"])
    mount = next(volume.split(":") for volume in service["volumes"]
                 if volume.endswith("rolegate.yaml:ro"))
    config = (ROOT / mount[0]).read_text(encoding="utf-8")
    assert service["command"][service["command"].index("--config") + 1] == mount[1]
    names = set(re.findall(r"\$\{([A-Z_]+)\}", config))
    assert names <= set(service["environment"]), "every ${NAME} the config reads is passed in"
    settings = parse_settings(config, source="deploy/rolegate.yaml",
                              environ={name: f"https://{name.lower()}.test" for name in names})
    assert settings.limits.backend == "redis"
    assert settings.database.url is not None and "@postgres:5432/" in settings.database.url


@pytest.mark.parametrize("path", ["Dockerfile", "compose.yaml"])
def test_the_container_files_are_documented_in_the_readme(path: str) -> None:
    assert f"`{path}`" in (ROOT / "README.md").read_text(encoding="utf-8")
