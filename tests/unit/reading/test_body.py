"""Reading a request body: only `model` and `stream` are inspected; the rest passes through."""

from __future__ import annotations

import pytest

from rolegate.errors import InvalidRequest
from rolegate.reading.body import MAX_MODEL_NAME, inspect, parse_form, rewrite_form
from rolegate.reading.form import read_parts


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


@pytest.mark.parametrize(("body", "message"), [
    ({}, "The request body has no `model`."),
    ({"model": ""}, f"`model` must be a non-empty string of at most {MAX_MODEL_NAME} characters."),
    ({"model": "gpt\u202e-4o"}, "`model` must not contain control or invisible characters."),
    ({"model": "gpt-4o", "user": "ada\x00"},
     "`user` must not contain control or invisible characters."),
    ({"model": "gpt-4o", "stream": "yes"}, "`stream` must be true or false."),
], ids=["missing-model", "empty-model", "model-with-bidi-override", "user-with-nul",
        "stream-not-a-bool"])
def test_each_refusal_tells_the_caller_what_to_fix(body, message):
    with pytest.raises(InvalidRequest) as caught:
        inspect(body, None)
    assert caught.value.message == message


@pytest.mark.parametrize("model", ["gpt\x00-4o", "gpt-4o\n", "gpt\u200b-4o", "gpt\u202e-4o"],
                         ids=["nul", "newline", "zero-width-space", "bidi-override"])
def test_a_model_with_control_or_invisible_characters_is_400_invalid_model(model):
    with pytest.raises(InvalidRequest) as caught:
        inspect({"model": model}, None)
    assert (caught.value.code, caught.value.param) == ("invalid_model", "model")


def test_a_model_from_the_path_is_checked_like_one_from_the_body():
    with pytest.raises(InvalidRequest) as caught:
        inspect({"model": "gpt-4o"}, "gpt\x00-4o")
    assert (caught.value.code, caught.value.param) == ("invalid_model", "model")


def test_a_model_name_of_the_longest_length_allowed_is_accepted():
    assert inspect({"model": "m" * MAX_MODEL_NAME}, None).model == "m" * MAX_MODEL_NAME


@pytest.mark.parametrize("user", ["ada\x00", "ada\u202e"])
def test_a_user_with_control_characters_is_400_invalid_user(user):
    with pytest.raises(InvalidRequest) as caught:
        inspect({"model": "gpt-4o", "user": user}, None)
    assert (caught.value.code, caught.value.param) == ("invalid_user", "user")


@pytest.mark.parametrize("user", ["ada", None, 42, ["ada\x00"]],
                         ids=["plain", "null", "number", "list"])
def test_a_user_that_is_not_a_string_with_control_characters_is_not_inspected(user):
    assert inspect({"model": "gpt-4o", "user": user}, None).model == "gpt-4o"


def test_model_and_stream_are_read_from_the_body():
    assert inspect({"model": "gpt-4o", "stream": True}, None).is_stream
    inspected = inspect({"model": "gpt-4o", "stream": None}, None)
    assert (inspected.model, inspected.is_stream) == ("gpt-4o", False)


def test_path_model_wins_over_the_body_model():
    assert inspect({"model": "gpt-4o-mini"}, "gpt-4o").model == "gpt-4o"
    assert inspect({}, "gpt-4o").model == "gpt-4o"


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
