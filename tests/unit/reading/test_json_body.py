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
], ids=["case-variant", "look-alike-only", "long-s", "case-variants-of-another-key",
        "proto", "control-character-in-key", "deeper-than-can-be-re-encoded"])
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
