"""Readers of a request body as upstreams read them, for the parser-differential test.

Each reader answers, for one body, every value it read for each deciding field (`model`,
`stream`, `user`) and, for forms, the names of the parts it took for files. Python's readers
run in-process; Node's (`readers.mjs`: JSON.parse, busboy) and Go's (`readers.go`:
encoding/json, mime/multipart) run as long-lived processes fed one example a line, so an
example costs a pipe round trip rather than a process start.

Node's readers need `npm ci --prefix tests/differential`; Go's need `go` (Debian's
`golang-go`): the program is built once per test session.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import multipart
import python_multipart
from werkzeug.formparser import parse_form_data

HERE = Path(__file__).parent
FIELDS = ("model", "stream", "user")
Reading = dict[str, Any]  # field -> values read (and "files" for forms), or {"error": ...}


def python_readings(kind: str, body: bytes, content_type: str) -> dict[str, Reading]:
    if kind == "json":
        return {"python json (last key wins)": _json(body, first_wins=False),
                "python json (first key wins)": _json(body, first_wins=True)}
    return {"werkzeug": _guarded(_werkzeug, body, content_type),
            "python-multipart": _guarded(_python_multipart, body, content_type),
            "multipart (lenient defaults)": _guarded(_multipart_lenient, body, content_type)}


def _json(body: bytes, *, first_wins: bool) -> Reading:
    def first(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            result.setdefault(key, value)
        return result
    try:
        value = json.loads(body, object_pairs_hook=first if first_wins else None)
    except ValueError as error:
        return {"error": str(error)}
    return {name: [value[name]] if name in value else [] for name in FIELDS}


def _guarded(reader: Any, body: bytes, content_type: str) -> Reading:
    try:
        return reader(body, content_type)
    except Exception as error:  # a reader that cannot read the body is reported, not raised
        return {"error": f"{type(error).__name__}: {error}"}


def _environ(body: bytes, content_type: str) -> dict[str, Any]:
    return {"REQUEST_METHOD": "POST", "CONTENT_TYPE": content_type,
            "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}


def _werkzeug(body: bytes, content_type: str) -> Reading:
    _stream, form, files = parse_form_data(_environ(body, content_type), silent=False)
    for _name, file in files.items(multi=True):
        file.close()
    return {**{name: form.getlist(name) for name in FIELDS}, "files": sorted(set(files))}


def _python_multipart(body: bytes, content_type: str) -> Reading:
    read: Reading = {name: [] for name in FIELDS}
    files: set[str] = set()

    def on_field(field: Any) -> None:
        name = field.field_name.decode()
        if name in FIELDS:
            read[name].append((field.value or b"").decode())

    def on_file(file: Any) -> None:
        files.add(file.field_name.decode())
        file.close()

    python_multipart.parse_form({"Content-Type": content_type.encode(),
                                 "Content-Length": str(len(body)).encode()},
                                io.BytesIO(body), on_field, on_file)
    return {**read, "files": sorted(files)}


def _multipart_lenient(body: bytes, content_type: str) -> Reading:
    forms, files = multipart.parse_form_data(_environ(body, content_type), strict=False)
    for _name, file in files.iterallitems():
        file.close()
    return {**{name: forms.getall(name) for name in FIELDS}, "files": sorted(set(files))}


class ReaderProcess:
    """A reader in another language, kept running: one example a line in, one answer out."""

    def __init__(self, argv: list[str]) -> None:
        self._process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         cwd=HERE)

    def read(self, kind: str, body: bytes, content_type: str) -> dict[str, Reading]:
        assert self._process.stdin is not None and self._process.stdout is not None
        line = json.dumps({"kind": kind, "body": base64.b64encode(body).decode(),
                           "content_type": content_type})
        self._process.stdin.write(line.encode() + b"\n")
        self._process.stdin.flush()
        answer = self._process.stdout.readline()
        if not answer:
            raise RuntimeError(f"reader {self._process.args} exited")
        return dict(json.loads(answer))

    def close(self) -> None:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.close()
        self._process.wait(timeout=10)
        self._process.stdout.close()


def node_reader() -> ReaderProcess | str:
    """Node's readers, or why they cannot run here."""
    node = shutil.which("node")
    if node is None:
        return "Node.js is not installed"
    if not (HERE / "node_modules" / "busboy").is_dir():
        return "busboy is not installed: npm ci --prefix tests/differential"
    return ReaderProcess([node, str(HERE / "readers.mjs")])


def go_reader(build_dir: Path) -> ReaderProcess | str:
    """Go's readers, built into `build_dir`, or why they cannot run here."""
    go = shutil.which("go")
    if go is None:
        return "Go is not installed (apt-get install golang-go)"
    binary = build_dir / "readers"
    # No module, no network: the program uses the standard library only.
    env = {**os.environ, "GOPROXY": "off", "GO111MODULE": "off",
           "GOCACHE": str(build_dir / "cache"), "GOPATH": str(build_dir / "gopath")}
    built = subprocess.run([go, "build", "-o", str(binary), str(HERE / "readers.go")],
                           env=env, capture_output=True, text=True, timeout=300)
    if built.returncode != 0:
        return f"go build failed: {built.stderr.strip()}"
    return ReaderProcess([str(binary)])
