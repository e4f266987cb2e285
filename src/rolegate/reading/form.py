"""Multipart forms (RFC 7578: audio transcription, image edits): read strictly, and rebuilt.

A form is never forwarded as received. Parsers disagree on forms in many places: which of two
`Content-Disposition` lines counts, whether `\\"` or `%22` in a quoted name is an escape,
whether `name*=` (RFC 2231) overrides `name=`, whether a `Content-Transfer-Encoding` or a
part's `charset` is applied, whether `filename=""` makes a file. So the gateway reads each part
strictly, refuses what two mainstream parsers could read differently, and sends on a form
rebuilt from the parts it read: one `Content-Disposition: form-data; name="…"` (and a filename
for files) per part, a `Content-Type` for files, file contents byte for byte, a fresh boundary.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import multipart  # type: ignore[import-untyped]  # the package ships no type information

from rolegate.errors import InvalidRequest
from rolegate.reading.fields import DECIDING_FIELDS, deciding_field_spelled_otherwise

MAX_FORM_PARTS = 64

# Plain field names: what the OpenAI form operations use (`model`, `timestamp_granularities[]`).
_NAME = re.compile(r"[A-Za-z0-9_.\-\[\]]{1,128}")
# A parameter is `name=token` or `name="quoted"`. Backslashes, `%`, `;` and control characters
# are refused inside quotes: parsers differ on whether `\\` and `%22` are escapes, and a parser
# that splits on `;` before unquoting would read another parameter.
_PARAMETER = re.compile(r'[ \t]*;[ \t]*([A-Za-z0-9*_-]+)=(?:"([^"\\%;\x00-\x1f\x7f-\x9f]*)"'
                        r"|([A-Za-z0-9!#$&'*+.^_`|~-]+))")
_DISPOSITION = re.compile(r"form-data", re.IGNORECASE)
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+")
_UTF8 = frozenset({"utf-8", "utf8", "us-ascii"})
_IDENTITY_ENCODINGS = frozenset({"7bit", "8bit", "binary"})
_KNOWN_HEADERS = frozenset({"content-disposition", "content-type", "content-transfer-encoding",
                            "content-length"})


@dataclass(frozen=True, slots=True)
class Part:
    """One part as the gateway read it: a text field (`filename` None) or a file."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes


def is_form(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "multipart/form-data"


def parse_form(raw: bytes, content_type: str) -> dict[str, Any]:
    """The text fields of a multipart/form-data body (file parts are skipped), `stream` as a
    bool. Refused with 400: anything `read_parts` refuses."""
    fields: dict[str, Any] = {}
    for part in read_parts(raw, content_type):
        if part.filename is None:
            fields.setdefault(part.name, _text(part))
    if "stream" in fields:
        fields["stream"] = fields["stream"] == "true"
    return fields


def rewrite_form(raw: bytes, content_type: str,
                 values: Mapping[str, str]) -> tuple[bytes, str]:
    """The form to send upstream and its content type: rebuilt from the parts read in `raw`,
    with the text fields named in `values` set to them (a deployment's own model name)."""
    parts = [replace(part, data=values[part.name].encode())
             if part.filename is None and part.name in values else part
             for part in read_parts(raw, content_type)]
    return encode(parts)


def read_parts(raw: bytes, content_type: str) -> list[Part]:
    """Every part of the form, read strictly. Refused with 400 `invalid_body`: a malformed
    body; a part header sent twice or unknown to RFC 7578; a name or filename that is empty,
    escaped, `name*=`-encoded or holds `;`, `%`, quotes or control characters; a transfer
    encoding; a text field in another charset than UTF-8; a deciding field (`model`,
    `stream`, …) sent twice, as a file or spelled in another case."""
    parts: list[Part] = []
    seen: set[str] = set()
    for headers, data in _segments(raw, content_type):
        part = _part(headers, data)
        _refuse_ambiguous_name(part, seen)
        if part.name == "stream":  # sent on as the gateway read it
            part = replace(part, data=part.data.lower())
        parts.append(part)
    return parts


def encode(parts: list[Part]) -> tuple[bytes, str]:
    """`parts` as a multipart/form-data body, under a boundary found in none of them."""
    boundary = _fresh_boundary(parts)
    out: list[bytes] = []
    for part in parts:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{part.name}"'
        if part.filename is not None:
            head += (f'; filename="{part.filename}"\r\n'
                     f"Content-Type: {part.content_type or 'application/octet-stream'}")
        out += [head.encode(), b"\r\n\r\n", part.data, b"\r\n"]
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


def _fresh_boundary(parts: list[Part]) -> str:
    while True:  # a 128-bit random boundary is in a part by chance with probability ~0
        boundary = f"rolegate-{secrets.token_hex(16)}"
        if not any(boundary.encode() in part.data for part in parts):
            return boundary


def _segments(raw: bytes, content_type: str) -> Iterator[tuple[list[tuple[str, str]], bytes]]:
    """Each whole part of a multipart body: its header lines and its data."""
    headers: list[tuple[str, str]] | None = None
    pieces: list[bytes] = []
    try:
        with multipart.PushMultipartParser(_boundary(content_type), strict=True,
                                           max_segment_count=MAX_FORM_PARTS) as parser:
            for result in [*parser.parse(raw), *parser.parse(b"")]:
                if isinstance(result, multipart.MultipartSegment):
                    headers, pieces = result.headerlist, []
                elif result is not None:
                    pieces.append(result)
                elif headers is not None:
                    yield headers, b"".join(pieces)
    except multipart.MultipartError:
        raise _malformed("The multipart body is malformed.") from None


def _boundary(content_type: str) -> str:
    _, options = multipart.parse_options_header(content_type)
    boundary = options.get("boundary")
    if not boundary:
        raise _malformed("The multipart body has no boundary.")
    return str(boundary)


def _part(headers: list[tuple[str, str]], data: bytes) -> Part:
    by_name: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        if key in by_name or key not in _KNOWN_HEADERS:
            raise _malformed(f"A form part has a repeated or unexpected `{name}` header.")
        by_name[key] = value
    if by_name.get("content-transfer-encoding", "binary").strip().lower() \
            not in _IDENTITY_ENCODINGS:
        raise _malformed("Form parts must not use a Content-Transfer-Encoding (RFC 7578 §4.7).")
    name, filename = _disposition(by_name["content-disposition"])
    content_type = _content_type(by_name.get("content-type"), is_file=filename is not None)
    return Part(name, filename, content_type, data)


def _disposition(value: str) -> tuple[str, str | None]:
    """`name` and `filename` of a `form-data` disposition, each once, plainly spelled."""
    start = _DISPOSITION.match(value)
    if start is None:
        raise _malformed("A form part is not `form-data`.")
    params: dict[str, str] = {}
    position = start.end()
    while position < len(value):
        param = _PARAMETER.match(value, position)
        if param is None:
            raise _malformed("A form part has a Content-Disposition that cannot be read "
                             "unambiguously.")
        key = param[1].lower()
        if key in params or key not in ("name", "filename"):
            raise _malformed(f"A form part has a repeated or unexpected `{param[1]}` parameter.")
        params[key] = param[2] if param[2] is not None else param[3]
        position = _skip_spaces(value, param.end())
    name = params.get("name", "")
    if _NAME.fullmatch(name) is None:
        raise _malformed("Every form part needs a plain name (letters, digits, `_.-[]`).")
    filename = params.get("filename")
    if filename is not None and not filename.strip():
        raise _malformed("A file part needs a filename.")
    return name, filename


def _skip_spaces(value: str, position: int) -> int:
    while position < len(value) and value[position] in " \t":
        position += 1
    return position


def _content_type(value: str | None, *, is_file: bool) -> str | None:
    """A file's media type (parameters dropped); a text field's charset must be UTF-8."""
    if value is None:
        return None
    media_type, options = multipart.parse_options_header(value)
    if is_file:
        return media_type if _MEDIA_TYPE.fullmatch(media_type) else "application/octet-stream"
    if str(options.get("charset", "utf-8")).lower() not in _UTF8:
        raise _malformed("Text fields of a form must be UTF-8.")
    return None


def _refuse_ambiguous_name(part: Part, seen: set[str]) -> None:
    look_alike = deciding_field_spelled_otherwise(part.name)
    if look_alike is not None:
        raise _malformed(f"A form part is named like `{look_alike}` in another case.",
                         param=look_alike)
    if part.name in DECIDING_FIELDS:
        if part.name in seen or part.filename is not None:
            raise _malformed(f"The form has more than one `{part.name}` part, or a file named "
                             "so.", param=part.name)
        seen.add(part.name)
        if part.name == "stream" and _text(part).lower() not in ("true", "false"):
            raise InvalidRequest("`stream` must be true or false.", code="invalid_stream",
                                 param="stream")


def _text(part: Part) -> str:
    try:
        text = part.data.decode()
    except UnicodeDecodeError:
        raise _malformed("A text field of the form is not UTF-8.") from None
    return text


def _malformed(message: str, *, param: str | None = None) -> InvalidRequest:
    return InvalidRequest(message, code="invalid_body", param=param)
