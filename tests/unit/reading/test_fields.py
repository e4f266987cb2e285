"""The deciding fields and their look-alikes; characters no identifier may hold."""

from __future__ import annotations

import pytest

from rolegate.reading.fields import (
    DECIDING_FIELDS, deciding_field_spelled_otherwise, folded, has_control_characters,
)


def test_model_stream_and_user_are_deciding_fields():
    assert {"model", "stream", "user"} <= DECIDING_FIELDS


@pytest.mark.parametrize(("name", "field"), [
    ("MODEL", "model"), ("Model", "model"), ("\uff4dodel", "model"), ("m\u00f6del", "model"),
    ("\u017ftream", "stream"), ("STREAM", "stream"), ("u\u017fer", "user"),
    ("stream_opt\u0131ons", "stream_options"), ("model", None), ("models", None),
    ("messages", None), ("Us\u0435r", None),
], ids=["upper", "title", "fullwidth-m", "umlaut", "long-s", "upper-stream", "long-s-user",
        "dotless-i", "exact", "longer", "other", "cyrillic-e"])
def test_a_name_folding_to_a_deciding_field_is_a_look_alike_unless_it_is_the_field(name, field):
    """Go folds each character to the upper case of its lower case: the long s is S, the
    dotless i is I. (A Cyrillic e folds to nothing Latin: no parser takes it for `e`.)"""
    assert deciding_field_spelled_otherwise(name) == field


def test_the_kelvin_sign_folds_to_k():
    assert folded("\u212a") == folded("K") == "k"


def test_the_capital_sharp_s_folds_as_its_lower_case_does():
    """Folding starts from the lower case: U+1E9E has no upper case of its own in Python, but
    its lower case, U+00DF, upper-cases to `SS`."""
    assert folded("\u1e9e") == folded("\u00df") == folded("SS") == "ss"


@pytest.mark.parametrize("text", ["a\x00", "a\x1f", "a\x7f", "a\x85", "a\u2028", "a\u2029",
                                  "a\u200b", "a\u202e", "a\ufeff", "a\ud800", "a\ue000"],
                         ids=["nul", "unit-separator", "del", "c1", "line-separator",
                              "paragraph-separator", "zero-width-space", "bidi-override", "bom",
                              "lone-surrogate", "private-use"])
def test_control_and_invisible_characters_are_spotted(text):
    assert has_control_characters(text)


@pytest.mark.parametrize("text", ["gpt-4o", "mistral:7b-instruct", "r\u00e9sum\u00e9",
                                  "\u6a21\u578b"])
def test_printable_names_pass(text):
    assert not has_control_characters(text)
