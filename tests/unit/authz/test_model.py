"""Action and Decision: what the policy is asked, and how an action reads in a message."""

from __future__ import annotations

from rolegate.authz.model import Action, Decision


def test_an_action_with_a_model_names_the_model_the_group_and_the_path():
    assert Action("inference", "/v1/chat/completions", "gpt-4o").describe() == \
        "model 'gpt-4o' on route group 'inference' (/v1/chat/completions)"


def test_an_action_without_a_model_names_the_group_and_the_path():
    assert Action("admin", "/admin/policy").describe() == "route group 'admin' (/admin/policy)"


def test_an_empty_model_name_is_still_named():
    assert Action("inference", "/v1/embeddings", "").describe() == \
        "model '' on route group 'inference' (/v1/embeddings)"


def test_a_decision_is_an_allow_unless_it_says_otherwise():
    assert Decision(True, "r", "granted").code == "allowed"
