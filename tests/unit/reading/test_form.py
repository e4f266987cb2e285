"""Multipart forms: read strictly, refused when two parsers could read them differently,
rebuilt from the parts read."""

from __future__ import annotations

import pytest

from rolegate.errors import InvalidRequest
from rolegate.reading.form import (
    MAX_FORM_PARTS, Part, encode, is_form, parse_form, read_parts, rewrite_form,
)

FORM_TYPE = "multipart/form-data; boundary=b"
MODEL = 'Content-Disposition: form-data; name="model"\r\n\r\nallowed'


def form(*parts: str | bytes) -> bytes:
    out = b""
    for part in parts:
        out += b"--b\r\n" + (part.encode() if isinstance(part, str) else part) + b"\r\n"
    return out + b"--b--\r\n"


@pytest.mark.parametrize("part", [
    'Content-Disposition: form-data; name="x"\r\nContent-Disposition: form-data; name="y"'
    "\r\n\r\nv",
    'Content-Disposition: form-data; name="x"\r\nContent-Type: text/plain\r\n'
    "content-type: text/plain\r\n\r\nv",
    'Content-Disposition: form-data; name="x"\r\nX-Extra: 1\r\n\r\nv',
    'Content-Disposition: form-data; name="x\\"y"\r\n\r\nv',
    'Content-Disposition: form-data; name="x\\y"\r\n\r\nv',
    'Content-Disposition: form-data; name="x%22"\r\n\r\nv',
    'Content-Disposition: form-data; name="x;y"\r\n\r\nv',
    'Content-Disposition: form-data; name="x y"\r\n\r\nv',
    'Content-Disposition: form-data; name="m\u00f6"\r\n\r\nv',
    "Content-Disposition: form-data; name*=utf-8''x\r\n\r\nv",
    "Content-Disposition: form-data; name=\"x\"; filename*=utf-8''a.wav\r\n\r\nv",
    'Content-Disposition: form-data; name="x"; name="y"\r\n\r\nv',
    'Content-Disposition: form-data; name="x"; size=3\r\n\r\nv',
    'Content-Disposition: form-data; name=""\r\n\r\nv',
    'Content-Disposition: form-data; filename="a.wav"\r\n\r\nv',
    'Content-Disposition: form-data; name="x"; filename=""\r\n\r\nv',
    'Content-Disposition: form-data; name="x"; filename="a\\".wav"\r\n\r\nv',
    'Content-Disposition: form-data; name="x"; filename="a\x01.wav"\r\n\r\nv',
    'Content-Disposition: form-data; name="x" junk\r\n\r\nv',
    'Content-Disposition: form-datax; name="x"\r\n\r\nv',
    'Content-Disposition: attachment; name="x"\r\n\r\nv',
    'Content-Disposition: form-data; name="x"\r\n continued\r\n\r\nv',
    'Content-Disposition: form-data; name="x"\r\nContent-Transfer-Encoding: base64\r\n\r\nv',
    'Content-Disposition: form-data; name="x"\r\nContent-Type: text/plain; charset=utf-16'
    "\r\n\r\nv",
    b'Content-Disposition: form-data; name="x"\r\n\r\n\xff',
], ids=["two-dispositions", "two-content-types", "unknown-header", "escaped-quote",
        "backslash", "percent", "semicolon", "space", "non-ascii-name", "rfc2231-name",
        "rfc2231-filename", "repeated-parameter", "unknown-parameter", "empty-name", "no-name",
        "empty-filename", "escaped-filename", "control-in-filename", "junk-after-parameters",
        "not-form-data", "attachment", "folded-header", "transfer-encoding", "utf-16-field",
        "field-not-utf-8"])
def test_a_part_two_parsers_could_read_differently_is_refused(part):
    with pytest.raises(InvalidRequest) as caught:
        parse_form(form(MODEL, part), FORM_TYPE)
    assert caught.value.code == "invalid_body"


@pytest.mark.parametrize(("parts", "param"), [
    ((MODEL, MODEL), "model"),
    ((MODEL, 'Content-Disposition: form-data; name="model"; filename="m.bin"\r\n\r\nx'),
     "model"),
    ((MODEL, 'Content-Disposition: form-data; name="Model"\r\n\r\nsecret'), "model"),
    ((MODEL, 'Content-Disposition: form-data; name="STREAM"\r\n\r\ntrue'), "stream"),
    ((MODEL, 'Content-Disposition: form-data; name="user"\r\n\r\na',
      'Content-Disposition: form-data; name="user"\r\n\r\nb'), "user"),
], ids=["model-twice", "model-as-a-file", "title-case-model", "upper-case-stream", "user-twice"])
def test_a_deciding_field_sent_twice_as_a_file_or_in_another_case_is_refused(parts, param):
    with pytest.raises(InvalidRequest) as caught:
        parse_form(form(*parts), FORM_TYPE)
    assert (caught.value.code, caught.value.param) == ("invalid_body", param)


@pytest.mark.parametrize("value", ["1", "yes", "", "tru\u0435"])
def test_stream_other_than_true_or_false_is_refused(value):
    with pytest.raises(InvalidRequest) as caught:
        parse_form(form(MODEL, f'Content-Disposition: form-data; name="stream"\r\n\r\n{value}'),
                   FORM_TYPE)
    assert (caught.value.code, caught.value.param) == ("invalid_stream", "stream")


@pytest.mark.parametrize(("raw", "content_type"), [
    (form(MODEL), "multipart/form-data"),
    (form(MODEL)[:-4], FORM_TYPE),
    (b"no boundary at all", FORM_TYPE),
], ids=["no-boundary-parameter", "unterminated", "no-delimiter"])
def test_a_malformed_form_is_refused(raw, content_type):
    with pytest.raises(InvalidRequest) as caught:
        parse_form(raw, content_type)
    assert caught.value.code == "invalid_body"


def test_plain_variations_every_parser_reads_alike_are_accepted_and_normalized():
    raw = form('content-disposition: FORM-DATA;name=model\r\n'
               "Content-Type: text/plain; charset=UTF-8\r\n"
               "Content-Transfer-Encoding: 8bit\r\nContent-Length: 7\r\n\r\nallowed",
               'Content-Disposition: form-data; name="stream"\r\n\r\nTRUE',
               'Content-Disposition: form-data; name="file"; filename="r\u00e9union.wav"\r\n'
               "Content-Type: audio/wav; codecs=1\r\n\r\nRIFF",
               'Content-Disposition: form-data; name="mask"; filename="m.png"\r\n'
               "Content-Type: not a type\r\n\r\nPNG",
               'Content-Disposition: form-data; name="image"; filename="i.png"\r\n\r\nPNG')

    parts = read_parts(raw, FORM_TYPE)

    assert parts == [Part("model", None, None, b"allowed"), Part("stream", None, None, b"true"),
                     Part("file", "r\u00e9union.wav", "audio/wav", b"RIFF"),
                     Part("mask", "m.png", "application/octet-stream", b"PNG"),
                     Part("image", "i.png", None, b"PNG")]
    assert parse_form(raw, FORM_TYPE) == {"model": "allowed", "stream": True}


def test_a_rebuilt_form_has_one_canonical_header_set_per_part_under_a_fresh_boundary():
    raw = form("Content-Disposition: form-data; name=model\r\n\r\npublic",
               'Content-Disposition: form-data; name="language"\r\n\r\nen',
               'Content-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
               "RIFF\r\n-b-not-quite")

    rebuilt, content_type = rewrite_form(raw, FORM_TYPE, {"model": "deployment-model"})

    boundary = content_type.removeprefix("multipart/form-data; boundary=")
    assert boundary.startswith("rolegate-") and len(boundary) == len("rolegate-") + 32
    assert rebuilt == (
        f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\n'
        f"deployment-model\r\n"
        f'--{boundary}\r\nContent-Disposition: form-data; name="language"\r\n\r\nen\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\nRIFF\r\n-b-not-quite\r\n"
        f"--{boundary}--\r\n").encode()


def test_each_rebuild_has_its_own_boundary():
    parts = [Part("model", None, None, b"m")]
    assert encode(parts)[1] != encode(parts)[1]


def disposition(parameters: str) -> str:
    return f"Content-Disposition: form-data; {parameters}\r\n\r\nv"


@pytest.mark.parametrize(("raw", "content_type", "message"), [
    (form(MODEL), "multipart/form-data", "The multipart body has no boundary."),
    (form(MODEL)[:-4], FORM_TYPE, "The multipart body is malformed."),
    (form(MODEL, 'Content-Disposition: form-data; name="x"\r\nContent-Type: text/plain; '
          "charset=latin1\r\n\r\nv"), FORM_TYPE, "Text fields of a form must be UTF-8."),
    (form(MODEL, disposition('name="x" junk')), FORM_TYPE,
     "A form part has a Content-Disposition that cannot be read unambiguously."),
    (form(MODEL, disposition('name="x"; size=3')), FORM_TYPE,
     "A form part has a repeated or unexpected `size` parameter."),
    (form(MODEL, disposition('name=""')), FORM_TYPE,
     "Every form part needs a plain name (letters, digits, `_.-[]`)."),
    (form(MODEL, disposition('name="x"; filename=" "')), FORM_TYPE,
     "A file part needs a filename."),
    (form(MODEL, 'Content-Disposition: form-data; name="x"\r\nContent-Transfer-Encoding: '
          "quoted-printable\r\n\r\nv"), FORM_TYPE,
     "Form parts must not use a Content-Transfer-Encoding (RFC 7578 §4.7)."),
    (form(MODEL, 'Content-Disposition: form-data; name="x"\r\nX-Extra: 1\r\n\r\nv'), FORM_TYPE,
     "A form part has a repeated or unexpected `X-Extra` header."),
    (form(MODEL, MODEL), FORM_TYPE, "The form has more than one `model` part, or a file named so."),
    (form(MODEL, 'Content-Disposition: form-data; name="Model"\r\n\r\nv'), FORM_TYPE,
     "A form part is named like `model` in another case."),
    (form(MODEL, 'Content-Disposition: form-data; name="stream"\r\n\r\nyes'), FORM_TYPE,
     "`stream` must be true or false."),
    (form(MODEL, b'Content-Disposition: form-data; name="x"\r\n\r\n\xff'), FORM_TYPE,
     "A text field of the form is not UTF-8."),
], ids=["no-boundary", "malformed", "latin1-field", "unreadable-disposition",
        "unexpected-parameter", "empty-name", "blank-filename", "transfer-encoding",
        "unexpected-header", "model-twice", "title-case-model", "stream-yes", "not-utf-8"])
def test_each_refusal_tells_the_caller_what_to_fix(raw, content_type, message):
    with pytest.raises(InvalidRequest) as caught:
        parse_form(raw, content_type)
    assert caught.value.message == message


def test_a_text_field_whose_content_type_names_no_charset_is_read_as_utf_8():
    raw = form(MODEL, 'Content-Disposition: form-data; name="language"\r\n'
                      "Content-Type: text/plain\r\n\r\nfran\u00e7ais")
    assert parse_form(raw, FORM_TYPE) == {"model": "allowed", "language": "fran\u00e7ais"}


@pytest.mark.parametrize(("value", "stream"), [("false", False), ("False", False),
                                               ("true", True)])
def test_stream_true_or_false_in_any_case_is_read_as_a_bool(value, stream):
    raw = form(MODEL, f'Content-Disposition: form-data; name="stream"\r\n\r\n{value}')
    assert parse_form(raw, FORM_TYPE)["stream"] is stream


def test_a_folded_part_header_is_refused():
    """A parser that unfolds would read `audio/wav; codecs=1`; one that does not, two lines."""
    raw = form(MODEL, 'Content-Disposition: form-data; name="file"; filename="a.wav"\r\n'
                      "Content-Type: audio/wav;\r\n codecs=1\r\n\r\nRIFF")
    with pytest.raises(InvalidRequest) as caught:
        parse_form(raw, FORM_TYPE)
    assert caught.value.code == "invalid_body"


def test_a_form_of_more_than_the_most_parts_allowed_is_refused():
    most = [MODEL] + [f'Content-Disposition: form-data; name="f{i}"\r\n\r\nv'
                      for i in range(MAX_FORM_PARTS - 1)]
    assert len(parse_form(form(*most), FORM_TYPE)) == MAX_FORM_PARTS
    with pytest.raises(InvalidRequest) as caught:
        parse_form(form(*most, 'Content-Disposition: form-data; name="one-more"\r\n\r\nv'),
                   FORM_TYPE)
    assert caught.value.code == "invalid_body"


@pytest.mark.parametrize(("content_type", "expected"), [
    ("multipart/form-data; boundary=b", True),
    ("Multipart/Form-Data;boundary=b", True),
    (" multipart/form-data ; boundary=b; charset=utf-8", True),
    ("multipart/form-data", True),
    ("application/json", False),
    ("multipart/mixed; boundary=b", False),
    ("application/json; profile=multipart/form-data", False),
], ids=["usual", "mixed-case-no-space", "spaces-and-two-parameters", "no-parameters", "json",
        "mixed", "named-in-a-parameter"])
def test_a_form_is_known_by_its_media_type_alone(content_type, expected):
    assert is_form(content_type) is expected


def test_spaces_between_disposition_parameters_are_allowed():
    raw = form(MODEL, 'Content-Disposition: form-data; name="file" ; filename="a.wav"\t\r\n'
                      "\r\nRIFF")
    assert read_parts(raw, FORM_TYPE)[1] == Part("file", "a.wav", None, b"RIFF")


def test_anything_but_spaces_right_after_a_quoted_parameter_is_refused():
    with pytest.raises(InvalidRequest) as caught:
        parse_form(form(MODEL, 'Content-Disposition: form-data; name="x"X; filename="a"\r\n'
                               "\r\nv"), FORM_TYPE)
    assert caught.value.code == "invalid_body"
