"""The fields the gateway decides on, declared once, and how another parser could misread them.

A policy decision is only as good as the agreement between the gateway's reading of a body and
the upstream's. Upstreams are written in other languages: Go's `encoding/json` matches keys
case-insensitively (last one wins), so do Jackson with case-insensitive properties and ASP.NET's
form collections. So a name that folds to a deciding field must be exactly that field, and no
two top-level names may fold alike.
"""

from __future__ import annotations

import re
import unicodedata

# Every field whose value the policy, routing, limits or metering read from a body. A surface
# that reads another (Anthropic's `max_tokens`, a tool name for MCP) adds it here: the readers
# then refuse its look-alikes and forward it exactly as read.
#   Anthropic's Messages API: `max_tokens` sizes the reservation its limits take, and
#   `metadata` carries the end user the gateway sets (`metadata.user_id`).
DECIDING_FIELDS: frozenset[str] = frozenset({"model", "stream", "user", "stream_options",
                                            "max_tokens", "metadata"})

_CONTROL_ASCII = re.compile(r"[\x00-\x1f\x7f]")
# Control (C0, DEL, C1), format (bidi overrides, zero widths, BOM), surrogate, private use, and
# the line and paragraph separators U+2028/9 that JavaScript once took for line ends.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})


def folded(name: str) -> str:
    """`name` as the loosest mainstream parser compares it: Go folds each character to the
    upper case of its lower case (dotless i U+0131 is `I`, long s U+017F is `S`, the Kelvin
    sign is `K`); accents and compatibility forms (fullwidth letters) are dropped on top,
    which can only refuse more."""
    if name.isascii():
        return name.lower()
    text = unicodedata.normalize("NFKD", name.lower().upper().lower())
    return "".join(c for c in text if not unicodedata.combining(c))


FOLDED_DECIDING_FIELDS = {folded(name): name for name in DECIDING_FIELDS}


def deciding_field_spelled_otherwise(name: str) -> str | None:
    """The deciding field `name` is a look-alike of (`MODEL`, `Stream`, `user` spelled with a
    long s), or None."""
    field = FOLDED_DECIDING_FIELDS.get(folded(name))
    return field if field is not None and field != name else None


def has_control_characters(text: str) -> bool:
    """Whether `text` holds a character no identifier should: control characters (C0, DEL,
    C1), invisible format characters, lone surrogates, private use or U+2028/U+2029."""
    if text.isascii():
        return _CONTROL_ASCII.search(text) is not None
    return any(unicodedata.category(c) in _REFUSED_CATEGORIES for c in text)
