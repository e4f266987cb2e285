"""Reading a request body: only `model` and `stream` are inspected; the rest passes through."""

from __future__ import annotations

import pytest

from rolegate.errors import InvalidRequest
from rolegate.reading.body import (
    MAX_MODEL_NAME, inspect, parse_form, parse_object, rewrite, rewrite_form,
)
from rolegate.reading.form import read_parts


@pytest.mark.parametrize(("raw", "code"), [
    (b"", "invalid_json"), (b"{", "invalid_json"), (b"{'model': 'x'}", "invalid_json"),
    (b"\xff\xfe", "invalid_json"), (b"[1, 2]", "invalid_body"), (b'"text"', "invalid_body"),
    (b"null", "invalid_body"), (b"42", "invalid_body"),
])
def test_body_that_is_not_a_json_object_is_400(raw, code):
    with pytest.raises(InvalidRequest) as caught:
        parse_object(raw)
    assert (caught.value.status, caught.value.code) == (400, code)


def test_deeply_nested_body_is_a_400_not_a_crash():
    with pytest.raises(InvalidRequest):
        parse_object(b'{"a":' * 10_000 + b"1" + b"}" * 10_000)


@pytest.mark.parametrize(("body", "code", "param"), [
    ({}, "missing_model", "model"),
    ({"model": None}, "missing_model", "model"),
    ({"model": 42}, "invalid_model", "model"),
    ({"model": ["gpt-4o"]}, "invalid_model", "model"),
    ({"model": True}, "invalid_model", "model"),
    ({"model": ""}, "invalid_model", "model"),
    ({"model": "m" * (MAX_MODEL_NAME + 1)}, "invalid_model", "model"),
    ({"model": "gpt-4o", "stream": "yes"}, "invalid_stream", "stream"),
    ({"model": "gpt-4o", "stream": 1}, "invalid_stream", "stream"),
])
def test_unusable_model_or_stream_is_400_naming_the_parameter(body, code, param):
    with pytest.raises(InvalidRequest) as caught:
        inspect(body, None)
    assert (caught.value.code, caught.value.param) == (code, param)


def test_model_and_stream_are_read_from_the_body():
    assert inspect({"model": "gpt-4o", "stream": True}, None).is_stream
    inspected = inspect({"model": "gpt-4o", "stream": None}, None)
    assert (inspected.model, inspected.is_stream) == ("gpt-4o", False)


def test_path_model_wins_over_the_body_model():
    assert inspect({"model": "gpt-4o-mini"}, "gpt-4o").model == "gpt-4o"
    assert inspect({}, "gpt-4o").model == "gpt-4o"


def test_every_body_is_sent_on_as_the_canonical_encoding_of_what_was_read():
    raw = b'{"model": "gpt-4o",  "messages": [], "model": "gpt-4o"}'
    body, sent = rewrite(parse_object(raw), upstream_model="gpt-4o", end_user=None)
    assert sent == b'{"model":"gpt-4o","messages":[]}'
    assert body == {"model": "gpt-4o", "messages": []}


def test_body_is_rewritten_for_the_upstream_model_and_end_user():
    raw = b'{"model": "public", "user": "caller-chosen", "x": 1}'
    body, sent = rewrite(parse_object(raw), upstream_model="upstream", end_user="ada")
    assert body == {"model": "upstream", "user": "ada", "x": 1}
    assert sent == b'{"model":"upstream","user":"ada","x":1}'


BOUNDARY = "b0undary"
FORM_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
AUDIO = b"RIFF\x00\xffbinary\r\n--b0undar not quite\r\n"
END = f"\r\n--{BOUNDARY}--\r\n".encode()


def form(model: str) -> bytes:
    return (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="model"\r\n\r\n{model}\r\n'
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="language"\r\n\r\nen\r\n'
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
            f'Content-Type: audio/wav\r\n\r\n').encode() + AUDIO + END


def test_a_form_rewritten_for_a_deployment_names_its_model_and_keeps_every_file_byte():
    rewritten, content_type = rewrite_form(form("whisper"), FORM_TYPE,
                                           {"model": "whisper-large-v3"})

    assert content_type.startswith("multipart/form-data; boundary=rolegate-")
    assert BOUNDARY not in content_type
    assert parse_form(rewritten, content_type) == {"model": "whisper-large-v3", "language": "en"}
    assert [(p.name, p.filename, p.content_type, p.data)
            for p in read_parts(rewritten, content_type)] == [
        ("model", None, None, b"whisper-large-v3"), ("language", None, None, b"en"),
        ("file", "a.wav", "audio/wav", AUDIO)]


def test_a_file_part_named_like_a_deciding_field_is_refused():
    body = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="model"; filename="m.bin"'
            f'\r\n\r\n').encode() + AUDIO + END

    with pytest.raises(InvalidRequest) as caught:
        rewrite_form(body, FORM_TYPE, {"model": "other"})
    assert (caught.value.code, caught.value.param) == ("invalid_body", "model")
