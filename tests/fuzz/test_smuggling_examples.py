"""Known ways of making an upstream read another model than the one authorized, each sent
through the gateway to a recording upstream by a caller granted model `allowed` only.

Each was seen working against a gateway that forwarded bodies as received: Go's
`encoding/json` takes `"MODEL"` for `model` (last wins), Go's and Werkzeug's form parsers take
the first of two `Content-Disposition` lines where `multipart` takes the last, and Go unescapes
`\\e` in a quoted name where `multipart` keeps the backslash.
"""

from __future__ import annotations

import io
import json

import pytest
from werkzeug.formparser import parse_form_data

from tests.fuzz.conftest import INFERENCE_ROLE, call

CHAT = "/v1/chat/completions"
TRANSCRIPTIONS = "/v1/audio/transcriptions"


async def send(gateway, token: str, path: str, body: bytes, content_type: str):
    return await call(gateway, "POST", path, body=body, headers=[
        (b"authorization", f"Bearer {token}".encode()),
        (b"content-type", content_type.encode())])


@pytest.mark.parametrize("body", [
    b'{"model": "allowed", "MODEL": "secret", "messages": []}',
    b'{"model": "allowed", "Model": "secret", "messages": []}',
    b'{"MODEL": "secret", "messages": []}',
    b'{"model": "allowed", "\\u004dODEL": "secret"}',
    b'{"model": "allowed", "stream": false, "\\u017ftream": true}',
    b'{"model": "allowed", "user": "ada", "USER": "eve"}',
], ids=["upper-case-key", "title-case-key", "only-a-look-alike", "escaped-upper-case-key",
        "long-s-stream", "upper-case-user"])
async def test_a_key_a_case_insensitive_parser_reads_as_a_deciding_field_is_refused(
        body, gateway, upstream, token_for):
    reply = await send(gateway, token_for(INFERENCE_ROLE), CHAT, body, "application/json")

    assert reply.status == 400, reply.body
    assert reply.json()["error"]["code"] == "invalid_body"
    assert upstream.requests == []


@pytest.mark.parametrize("body", [
    b'{"model": "secret", "model": "allowed", "messages": []}',
    b'{"mod\\u0065l": "secret", "model": "allowed", "messages": []}',
    b'{"model": "secret", "\\u006dodel": "allowed", "messages": []}',
    b'\n{"model":\t"allowed",   "messages": []}  ',
], ids=["duplicate-key", "escaped-duplicate-key", "escaped-last-key", "odd-whitespace"])
async def test_the_upstream_gets_one_model_key_naming_the_model_authorized(
        body, gateway, upstream, token_for):
    reply = await send(gateway, token_for(INFERENCE_ROLE), CHAT, body, "application/json")

    assert reply.status == 200, reply.body
    (sent,) = upstream.requests
    assert sent.body == b'{"model":"allowed","messages":[]}'


@pytest.mark.parametrize("model", ["allowed\x00", "allowed\x7f", "allowed\x85", "allowed\u2028",
                                   "allow\u200bed", "allowed\u202e"],
                         ids=["nul", "del", "c1", "line-separator", "zero-width", "bidi"])
async def test_a_model_name_with_control_characters_is_refused_at_the_door(
        model, gateway, upstream, token_for):
    body = json.dumps({"model": model, "messages": []}).encode()

    reply = await send(gateway, token_for(INFERENCE_ROLE), CHAT, body, "application/json")

    assert reply.status == 400, reply.body
    assert reply.json()["error"]["code"] == "invalid_model"
    assert upstream.requests == []


def form(*parts: str) -> bytes:
    return ("".join(f"--b\r\n{part}\r\n" for part in parts) + "--b--\r\n").encode()


FORM_TYPE = "multipart/form-data; boundary=b"
AUDIO_PART = ('Content-Disposition: form-data; name="file"; filename="a.wav"\r\n'
              "Content-Type: audio/wav\r\n\r\nRIFF")


@pytest.mark.parametrize("body", [
    form('Content-Disposition: form-data; name="model"\r\n'
         'Content-Disposition: form-data; name="note"\r\n\r\nsecret',
         'Content-Disposition: form-data; name="model"\r\n\r\nallowed', AUDIO_PART),
    form('Content-Disposition: form-data; name="mod\\el"\r\n\r\nsecret',
         'Content-Disposition: form-data; name="model"\r\n\r\nallowed', AUDIO_PART),
    form('Content-Disposition: form-data; name="mo%64el"\r\n\r\nsecret',
         'Content-Disposition: form-data; name="model"\r\n\r\nallowed', AUDIO_PART),
    form("Content-Disposition: form-data; name*=utf-8''model; name=\"note\"\r\n\r\nsecret",
         'Content-Disposition: form-data; name="model"\r\n\r\nallowed', AUDIO_PART),
    form('Content-Disposition: form-data; name="model"; name="note"\r\n\r\nsecret',
         'Content-Disposition: form-data; name="model"\r\n\r\nallowed', AUDIO_PART),
    form('Content-Disposition: form-data; name="model"\r\n'
         "Content-Transfer-Encoding: base64\r\n\r\nYWxsb3dlZA==", AUDIO_PART),
    form('Content-Disposition: form-data; name="model"\r\n\r\nallowed',
         'Content-Disposition: form-data; name="Model"\r\n\r\nsecret', AUDIO_PART),
    form('Content-Disposition: form-data; name="model"\r\n\r\nallowed',
         'Content-Disposition: form-data; name="model"; filename=""\r\n\r\nsecret'),
], ids=["two-content-dispositions", "backslash-escaped-name", "percent-escaped-name",
        "rfc2231-name", "repeated-name-parameter", "transfer-encoding", "title-case-name",
        "empty-filename"])
async def test_a_form_two_parsers_could_read_differently_is_refused(
        body, gateway, upstream, token_for):
    reply = await send(gateway, token_for(INFERENCE_ROLE), TRANSCRIPTIONS, body, FORM_TYPE)

    assert reply.status == 400, reply.body
    assert reply.json()["error"]["code"] == "invalid_body"
    assert upstream.requests == []


async def test_an_accepted_form_reaches_the_upstream_rebuilt_as_the_gateway_read_it(
        gateway, upstream, token_for):
    body = form('Content-Disposition: form-data; name=model\r\n'
                "Content-Type: text/plain; charset=utf-8\r\n\r\nallowed",
                'Content-Disposition: form-data; name="stream"\r\n\r\nFALSE',
                'content-disposition: FORM-DATA; name="file"; filename="r\u00e9union.wav"\r\n'
                "Content-Type: audio/wav; codecs=1\r\n\r\nRIFF\r\n-b\x00")
    body = body.replace(b"--b\r\nContent", b"preamble\r\n--b\r\nContent", 1)

    await send(gateway, token_for(INFERENCE_ROLE), TRANSCRIPTIONS, body, FORM_TYPE)

    sent = upstream.requests[0]
    content_type = sent.headers["Content-Type"]
    assert content_type.startswith("multipart/form-data; boundary=rolegate-")
    _stream, fields, files = parse_form_data({
        "REQUEST_METHOD": "POST", "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(sent.body)), "wsgi.input": io.BytesIO(sent.body)})
    assert fields.to_dict(flat=False) == {"model": ["allowed"], "stream": ["false"]}
    assert files["file"].read() == b"RIFF\r\n-b\x00"
    assert files["file"].filename == "r\u00e9union.wav"
    assert files["file"].content_type == "audio/wav"
    files["file"].close()
