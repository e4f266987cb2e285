"""The README's set-up and walkthrough, every command exactly as written: `./dev serve` from the
checkout's root on its embedded defaults, then each `bash` block of "Five-minute walkthrough" in
one shell session (so `TOKEN` and `NOBODY` carry from block to block, as in a terminal), then its
Python snippet. A README edit that breaks a command a new user would paste fails here."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
ADDRESS = "http://127.0.0.1:8080"  # where the README says `./dev serve` listens
BLOCK = re.compile(r"^```(bash|python)\n(.*?)^```", re.MULTILINE | re.DOTALL)
END = "::rolegate-block-end::"


def walkthrough_blocks() -> list[tuple[str, str]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Five-minute walkthrough", 1)[1].split("\n## ", 1)[0]
    return [(match.group(1), match.group(2)) for match in BLOCK.finditer(section)]


def setup_commands() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    block = BLOCK.search(section)
    assert block is not None, "the set-up section has no command block"
    return [line.split("#", 1)[0].strip() for line in block.group(2).splitlines()
            if line.strip()]


@pytest.fixture(scope="module")
def served() -> Iterator[subprocess.Popen[bytes]]:
    serve = setup_commands()[0]
    assert serve == "./dev serve"
    with httpx.Client() as probe:
        try:
            probe.get(f"{ADDRESS}/health/live", timeout=1)
            pytest.fail(f"{ADDRESS} is already taken: stop the gateway running there")
        except httpx.TransportError:
            pass
    log = open(ROOT / ".rolegate-readme-test.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(serve.split(), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        _wait_ready(process)
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()
        (ROOT / ".rolegate-readme-test.log").unlink(missing_ok=True)


def _wait_ready(process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    with httpx.Client() as probe:
        while time.monotonic() < deadline:
            assert process.poll() is None, "./dev serve exited before it was ready"
            try:
                if probe.get(f"{ADDRESS}/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    pytest.fail("./dev serve was not ready within 60 s")


def test_every_walkthrough_command_works_as_written(served: subprocess.Popen[bytes]):
    blocks = walkthrough_blocks()
    shell = [code for kind, code in blocks if kind == "bash"]
    snippets = [code for kind, code in blocks if kind == "python"]
    assert len(shell) >= 3 and snippets, "the walkthrough lost its commands"
    script = "".join(f"{code}\necho \"{END} $?\"\n" for code in shell)
    # The Python snippet runs in the same session, so it sees the exported TOKEN.
    script += "".join(f".venv/bin/python - <<'SNIPPET'\n{code}SNIPPET\necho \"{END} $?\"\n"
                      for code in snippets)
    done = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    parts = done.stdout.split(END)  # block output, END, " <exit code>\n" + next block's output
    outputs = [parts[0], *(part.partition("\n")[2] for part in parts[1:-1])]
    codes = [int(part.partition("\n")[0]) for part in parts[1:]]

    assert len(outputs) == len(shell) + len(snippets), done.stderr
    tokens, refused, explained, *sdk = zip(outputs, codes, strict=True)
    assert tokens[1] == 0 and '"id":"echo"' in tokens[0] and '"chat.completion"' in tokens[0]
    assert refused[1] == 0 and '"code":"insufficient_scope"' in refused[0]
    # explain exits non-zero when the request would be refused, and says which rule would grant
    assert explained[1] == 1 and "users" in explained[0]
    assert all(code == 0 for _, code in sdk), done.stderr
