"""The parser-differential test: whatever the gateway authorizes, every upstream reads.

Bodies and forms are generated as raw bytes (duplicate keys and headers, escapes, case
variants, odd parameters, transfer encodings, charsets). Each is read as the gateway reads it;
when the gateway accepts it, the bytes it would send upstream are read by every parser family
that can run here: Python's `json` (last and first key wins), Werkzeug, python-multipart and
`multipart`'s lenient reading, Node's `JSON.parse` and busboy, Go's `encoding/json` (into a
struct, case-insensitively, and into a map) and `mime/multipart`. Each must read exactly the
`model`, `stream` and `user` the gateway decided on, and take the same parts for files.

`FUZZ_EXAMPLES` sets the examples per property (tests/fuzz/conftest.py). Node's and Go's
readers are skipped when not installed, unless `REQUIRE_DIFFERENTIAL=1` (set by `.ci/run`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from rolegate.errors import InvalidRequest
from rolegate.reading.body import inspect, parse_form, parse_object
from rolegate.reading.form import read_parts
from rolegate.routing.request import ClientRequest
from tests.differential.readers import (
    FIELDS, ReaderProcess, Reading, go_reader, node_reader, python_readings,
)
from tests.fuzz.conftest import FUZZ_EXAMPLES, fuzz_settings

IS_REQUIRED = os.environ.get("REQUIRE_DIFFERENTIAL") == "1"
# An example takes a few milliseconds; a long run must not be cut by the suite's 60 s timeout.
pytestmark = pytest.mark.timeout(60 + FUZZ_EXAMPLES // 10)


@pytest.fixture(scope="session")
def external_readers(tmp_path_factory) -> Iterator[dict[str, ReaderProcess | str]]:
    """Node's and Go's readers, each a running process or the reason it cannot run."""
    readers = {"node": node_reader(), "go": go_reader(tmp_path_factory.mktemp("go-readers"))}
    yield readers
    for reader in readers.values():
        if isinstance(reader, ReaderProcess):
            reader.close()


def test_every_upstream_parser_family_is_available(external_readers):
    """Without Node or Go the properties below run with Python's readers only: say so."""
    missing = [reason for reason in external_readers.values() if isinstance(reason, str)]
    if missing and IS_REQUIRED:
        pytest.fail("; ".join(missing))
    if missing:
        pytest.skip("; ".join(missing))


@dataclass(frozen=True)
class Sent:
    """What the gateway decided and the bytes it sends upstream for it."""

    expected: dict[str, list[Any]]
    files: list[str] | None  # for forms: the names of the parts sent as files
    body: bytes
    content_type: str


def gateway_sends(kind: str, raw: bytes, content_type: str, end_user: str | None,
                  operation: str = "chat/completions") -> Sent | None:
    """The gateway's reading of `raw` (as `ProxyHandlers._read` and `upstream_call` make it),
    or None when the gateway refuses it."""
    is_form = kind == "form"
    try:
        body = parse_form(raw, content_type) if is_form else parse_object(raw)
        inspected = inspect(body, None)
        request = ClientRequest("audio/transcriptions" if is_form else operation,
                                inspected.model, body, raw, inspected.is_stream, "req-1",
                                end_user, content_type, is_form)
        call = request.upstream_call(inspected.model, include_stream_usage=True)
    except InvalidRequest as refusal:
        event(f"{kind} refused: {refusal.code}")
        return None
    event(f"{kind} accepted")
    sent = call.body
    assert sent["model"] == inspected.model  # the model authorized is the model sent
    assert bool(sent.get("stream")) is inspected.is_stream
    expected = {name: [sent[name]] if name in sent else [] for name in FIELDS}
    if not is_form:
        return Sent(expected, None, call.raw_body or b"", call.content_type)
    if "stream" in sent:
        expected["stream"] = ["true" if sent["stream"] else "false"]
    assert call.raw_body is not None
    files = sorted({part.name for part in read_parts(call.raw_body, call.content_type)
                    if part.filename is not None})
    return Sent(expected, files, call.raw_body, call.content_type)


def assert_every_reader_agrees(kind: str, sent: Sent,
                               external_readers: dict[str, ReaderProcess | str]) -> None:
    readings: dict[str, Reading] = python_readings(kind, sent.body, sent.content_type)
    for reader in external_readers.values():
        if isinstance(reader, ReaderProcess):
            readings.update(reader.read(kind, sent.body, sent.content_type))
    for reader_name, reading in readings.items():
        seen = {name: reading.get(name) for name in FIELDS}
        assert "error" not in reading and seen == sent.expected, (
            f"{reader_name} read {reading}, the gateway decided {sent.expected}; "
            f"sent: {sent.body[:600]!r}")
        if sent.files is not None:
            assert reading["files"] == sent.files, (reader_name, reading, sent.files)


# --- JSON ---------------------------------------------------------------------------------
# Each member is plain three times in four; otherwise its key or its value (or both) is one
# of the spellings below, so that accepted bodies carry them too.

KEYS = {
    "model": ['"MODEL"', '"Model"', '"mod\\u0065l"', '"\\u006dodel"', '"\\u004dODEL"',
              '"model\\u0000"', '"model "', '"m\\u00f6del"', '"\\uff4dodel"'],
    "stream": ['"Stream"', '"STREAM"', '"\\u017ftream"', '"\\u0073tream"', '"stream\\u0000"'],
    "user": ['"USER"', '"u\\u017fer"', '"\\u0075ser"', '"Us\\u0435r"'],
    "messages": ['"__proto__"', '"stream_options"', '"Stream_Options"', '"x"', '"X"',
                 '"\\u212a"', '"k"', '"\\u0131nclude"', '"include"', '"max_tokens"',
                 '"MAX_TOKENS"', '"metadata"', '"Metadata"'],
}
VALUES = {
    "model": ['"secret"', '"\\u0073ecret"', '"\\u0061llowed"', '"allowed\\u0000"',
              '"allow\\u200bed"', '"allowed\\u2028"', '"allowed\\u0085"', '"\\ud800"',
              '"\\udc00\\ud800"', '"all\\u00f6wed"', '"allowed\\t"', "null", "1",
              '["secret"]', '{"model": "secret"}'],
    "stream": ["null", '"true"', "1", "0"],
    "user": ['"ada\\u0000"', '"\\u0061da"', '"ada\\u202e"', "null", "7", '"\\u00e9"'],
    "messages": ['{}', '{"model": "secret"}', '{"__proto__": {"model": "secret"}}',
                 '{"include_usage": false}', "1e400", "123456789012345678901234567890",
                 "-0.0", '"\\ud83d\\ude00"', '"\\udcff"', '"caf\\u00e9"', '"café"',
                 "[" * 300 + "]" * 300, "[" * 20 + "]" * 20],
}
PLAIN = {"model": '"allowed"', "stream": "true", "user": '"ada"',
         "messages": '[{"role": "user", "content": "hi"}]'}
_space = st.sampled_from(["", "", "", " ", "\t", "\n"])


@st.composite
def json_members(draw: st.DrawFn, field: str) -> str:
    odd = draw(st.sampled_from(["", "", "", "key", "value", "both"]))
    key = f'"{field}"'
    if odd in ("key", "both"):
        key = draw(st.sampled_from(KEYS[field]) | st.text(max_size=6).map(_json_string))
    value = draw(st.sampled_from(VALUES[field])) if odd in ("value", "both") else PLAIN[field]
    if field == "stream" and not odd:
        value = draw(st.sampled_from(["true", "false"]))
    return f"{key}{draw(_space)}:{draw(_space)}{value}"


@st.composite
def json_bodies(draw: st.DrawFn) -> bytes:
    fields = ["model", *draw(st.lists(st.sampled_from(["model", "stream", "user", "messages"]),
                                      max_size=5))]
    members = [draw(json_members(field)) for field in draw(st.permutations(fields))]
    start = draw(st.sampled_from([""] * 12 + [" \n", "\ufeff"]))
    end = draw(st.sampled_from([""] * 12 + ["\n", "\x00", " x"]))
    text = start + "{" + ", ".join(members) + "}" + end
    return text.encode("utf-8", "surrogateescape")  # "\udcff" is the byte 0xff


def _json_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if c >= " " else f"\\u{ord(c):04x}" for c in escaped) + '"'


@fuzz_settings
@given(raw=json_bodies(), end_user=st.none() | st.sampled_from(["ada", "bob"]),
       operation=st.sampled_from(["chat/completions", "messages"]))
@example(raw=b'{"model": "allowed", "MODEL": "secret"}', end_user=None,
         operation="chat/completions")
@example(raw=b'{"model": "allowed", "Model": "secret", "messages": []}', end_user=None,
         operation="chat/completions")
@example(raw=b'{"model": "secret", "model": "allowed"}', end_user=None,
         operation="chat/completions")
@example(raw=b'{"model": "allowed", "mod\\u0065l": "secret"}', end_user=None,
         operation="chat/completions")
@example(raw=b'{"model": "allowed", "stream": false, "\\u017ftream": true}', end_user=None,
         operation="chat/completions")
@example(raw=b'{"model": "allowed", "user": "ada", "USER": "eve"}', end_user="ada",
         operation="chat/completions")
@example(raw=b'{"model": "allowed", "metadata": {}, "Metadata": {"user_id": "eve"}}',
         end_user="ada", operation="messages")
@example(raw=b'{"model": "allowed", "max_tokens": 5, "MAX_TOKENS": 99999}', end_user=None,
         operation="messages")
def test_every_json_reader_reads_the_model_the_gateway_authorized(raw, end_user, operation,
                                                                   external_readers):
    """For OpenAI's bodies and Anthropic's (`messages`: the end user goes in `metadata`)."""
    sent = gateway_sends("json", raw, "application/json", end_user, operation)
    if sent is not None:
        assert_every_reader_agrees("json", sent, external_readers)


# --- Forms --------------------------------------------------------------------------------
# Each part is plain three times in four; otherwise one thing about it is odd: its name, its
# Content-Disposition, an extra header, its data.

ODD_NAMES = ["model", '"Model"', '"MODEL"', '"mo\\"del"', '"mod\\el"', '"mod%65l"',
             '"model%22"', '"model;x"', '"m\u00f6del"', '"model "', '"stream"', '"user"',
             '"Stream"', '"USER"', '"file"', '"image[]"']
DISPOSITIONS = [
    "form-data; name={n}; filename=\"a.wav\"", "form-data; name={n}; filename=\"\"",
    "form-data; name={n}; filename*=utf-8''a.wav", "form-data; name*=utf-8''secret; name={n}",
    "form-data; name={n}; name=\"secret\"", "FORM-DATA; NAME={n}", "attachment; name={n}",
    "form-data;name={n}", "form-data; name={n}; filename=\"r\u00e9union.wav\"",
    "form-data; name={n} ; filename=\"x;name=secret\"", "form-data; name={n}\r\n continued",
    "form-data; name={n}; filename=\"a\\\".wav\"", "form-data; name={n}; filename=\"a%22.wav\"",
    "form-data; name={n}; filename=\"a.wav\"; filename=\"b.wav\""]
EXTRA_HEADERS = [
    'Content-Disposition: form-data; name="secret"', "Content-Type: text/plain; charset=utf-16",
    "Content-Type: text/plain; charset=utf-8", "Content-Type: audio/wav",
    "Content-Type: application/x-evil; x=\"1\"", "Content-Transfer-Encoding: base64",
    "Content-Transfer-Encoding: quoted-printable", "Content-Transfer-Encoding: binary",
    "X-Extra: 1", "Content-Length: 7", "content-disposition: form-data; name=\"model\""]
ODD_DATA = {
    "model": [b"secret", b"c2VjcmV0", b"secr=65t", b"allowed\x00", b"allow\xe2\x80\x8bed",
              b"all\xffowed", b"allowed\r\n"],
    "stream": [b"TRUE", b"1", b"yes", b""],
    "user": [b"ada\x00", b"\xff", b"\xc3\xa9"],
    "file": [b"\r\n--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nsecret\r\n",
             b"\r\n--rolegate-", b""],
}
PLAIN_DATA = {"model": [b"allowed"], "stream": [b"true", b"false"], "user": [b"ada"],
              "file": [b"RIFF\x00\xffdata\r\n"]}


@st.composite
def form_parts(draw: st.DrawFn, field: str) -> str | bytes:
    odd = draw(st.sampled_from(["", "", "", "", "", "", "name", "disposition", "header", "data"]))
    name = draw(st.sampled_from(ODD_NAMES)) if odd == "name" else f'"{field}"'
    disposition = ("form-data; name={n}; filename=\"a.wav\"" if field == "file"
                   else "form-data; name={n}")
    if odd == "disposition":
        disposition = draw(st.sampled_from(DISPOSITIONS))
    headers = [f"Content-Disposition: {disposition.format(n=name)}"]
    if field == "file":
        headers.append("Content-Type: audio/wav")
    if odd == "header":
        headers.insert(draw(st.sampled_from([0, 1])), draw(st.sampled_from(EXTRA_HEADERS)))
    data = draw(st.sampled_from(PLAIN_DATA[field]))
    if odd == "data":
        data = draw(st.sampled_from(ODD_DATA[field]) | st.binary(max_size=40))
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + data


@st.composite
def forms(draw: st.DrawFn) -> tuple[bytes, str]:
    boundary = draw(st.sampled_from(["b"] * 6 + ["bound-ary", "a'b", "x y", "=?"]))
    fields = ["model", *draw(st.lists(st.sampled_from(["model", "stream", "user", "file"]),
                                      max_size=4))]
    parts = [draw(form_parts(field)) for field in draw(st.permutations(fields))]
    delimiter = f"--{boundary}\r\n".encode()
    raw = (draw(st.sampled_from([b""] * 8 + [b"preamble\r\n"]))
           + b"".join(delimiter + part + b"\r\n" for part in parts)
           + f"--{boundary}--\r\n".encode() + draw(st.sampled_from([b""] * 8 + [b"epilogue"])))
    quoted = f'"{boundary}"' if " " in boundary or draw(st.booleans()) else boundary
    content_type = draw(st.sampled_from(["multipart/form-data; boundary={b}"] * 6 + [
        "MULTIPART/FORM-DATA; boundary={b}", "multipart/form-data; charset=utf-8; boundary={b}",
        "multipart/form-data; boundary={b}; boundary=other"])).format(b=quoted)
    return raw, content_type


def _form(*parts: str) -> tuple[bytes, str]:
    body = "".join(f"--b\r\n{part}\r\n" for part in parts) + "--b--\r\n"
    return body.encode(), "multipart/form-data; boundary=b"


@fuzz_settings
@given(form=forms())
@example(form=_form('Content-Disposition: form-data; name="model"\r\n'
                    'Content-Disposition: form-data; name="secret"\r\n\r\nallowed'))
@example(form=_form('Content-Disposition: form-data; name="mo\\"del"\r\n\r\nsecret',
                    'Content-Disposition: form-data; name="model"\r\n\r\nallowed'))
@example(form=_form('Content-Disposition: form-data; name="model"\r\n\r\nallowed',
                    'Content-Disposition: form-data; name="Model"\r\n\r\nsecret'))
@example(form=_form('Content-Disposition: form-data; name="model"\r\n\r\nallowed',
                    'Content-Disposition: form-data; name="stream"\r\n\r\nTRUE',
                    'Content-Disposition: form-data; name="file"; filename="r\u00e9union.wav"'
                    "\r\nContent-Type: audio/wav\r\n\r\nRIFF"))
def test_every_form_reader_reads_the_model_the_gateway_authorized(form, external_readers):
    raw, content_type = form
    sent = gateway_sends("form", raw, content_type, None)
    if sent is not None:
        assert_every_reader_agrees("form", sent, external_readers)
