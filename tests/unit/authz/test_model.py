"""Action and Decision: what the policy is asked, and how an action reads in a message."""

from __future__ import annotations

from rolegate.authz.model import Action, Decision, McpTarget


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


def test_an_mcp_action_names_the_server_in_place_of_a_model():
    action = Action("mcp", "/mcp/forge", mcp=McpTarget("forge"))
    assert action.describe() == "MCP server 'forge' on route group 'mcp' (/mcp/forge)"


def test_an_mcp_call_names_the_tool_and_its_server():
    action = Action("mcp", "/mcp/forge", mcp=McpTarget("forge", "tool", "search_code"))
    assert action.describe() == \
        "tool 'search_code' of MCP server 'forge' on route group 'mcp' (/mcp/forge)"
