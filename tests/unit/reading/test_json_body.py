"""JSON bodies: refused when another parser could read them differently, else re-encoded."""

from __future__ import annotations

import pytest

from rolegate.errors import InvalidRequest
from rolegate.reading.body import inspect
from rolegate.reading.json_body import parse_object, rewrite


@pytest.mark.parametrize(("raw", "param"), [
    (b'{"model": "a", "MODEL": "b"}', None),
    (b'{"Model": "b"}', "model"),
    (b'{"model": "a", "\\u017ftream": true}', "stream"),
    (b'{"model": "a", "temperature": 1, "Temperature": 2}', None),
    (b'{"model": "a", "__proto__": {"stream": true}}', None),
    (b'{"model": "a", "x\\u0000": 1}', None),
    (b'{"model": "a", "x": ' + b"[" * 300 + b"]" * 300 + b"}", None),
    (b'{"model": "a", "MAX_TOKENS": 99999}', "max_tokens"),
    (b'{"model": "a", "Metadata": {"user_id": "eve"}}', "metadata"),
], ids=["case-variant", "look-alike-only", "long-s", "case-variants-of-another-key",
        "proto", "control-character-in-key", "deeper-than-can-be-re-encoded",
        "anthropic-max-tokens-look-alike", "anthropic-metadata-look-alike"])
def test_a_body_another_parser_could_read_differently_is_400_invalid_body(raw, param):
    with pytest.raises(InvalidRequest) as caught:
        parse_object(raw)
    assert (caught.value.code, caught.value.param) == ("invalid_body", param)


def test_the_value_orjson_kept_for_a_duplicate_key_is_the_one_sent():
    body = parse_object(b'{"model": "first", "model": "last", "user": "u"}')
    assert inspect(body, None).model == "last"
    assert rewrite(body, upstream_model="last", end_user=None)[1] == b'{"model":"last","user":"u"}'


def test_an_end_user_that_cannot_be_encoded_is_400_not_a_crash():
    with pytest.raises(InvalidRequest) as caught:
        rewrite({"model": "m"}, upstream_model="m", end_user="\ud800")
    assert caught.value.code == "invalid_body"


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


@pytest.mark.parametrize(("raw", "message"), [
    (b"{", "The request body is not valid JSON."),
    (b"[1, 2]", "The request body must be a JSON object."),
    (b'{"model": "a", "MODEL": "b"}', "The body has two top-level keys that differ only in case."),
    (b'{"Model": "b"}',
     "The body has a key that reads as `model` to case-insensitive parsers; send it as `model`."),
    (b'{"model": "a", "__proto__": {}}', "The body has a top-level key no API defines."),
    (b'{"model": "a", "x": ' + b"[" * 300 + b"]" * 300 + b"}",
     "The request body is nested too deeply or holds a string that is not valid Unicode."),
], ids=["not-json", "not-an-object", "case-variants", "look-alike", "proto", "too-deep"])
def test_each_refusal_tells_the_caller_what_to_fix(raw, message):
    with pytest.raises(InvalidRequest) as caught:
        parse_object(raw)
    assert caught.value.message == message


def test_the_body_is_forwarded_with_the_fields_the_gateway_sets():
    _, sent = rewrite({"model": "m", "stream": True}, upstream_model="m", end_user=None,
                      extra={"stream_options": {"include_usage": True}})
    assert sent == b'{"model":"m","stream":true,"stream_options":{"include_usage":true}}'
