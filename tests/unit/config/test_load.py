"""Loading the YAML configuration: interpolation, schema errors with paths, cross-references, and
every problem reported at once."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from rolegate.accounting.estimate import TokenEstimator
from rolegate.config.load import ConfigError, load_settings, parse_settings, validate_settings
from rolegate.providers.http import HttpClient
from rolegate.providers.registry import build_provider
from rolegate.config.model import Settings

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
EXAMPLE_ENV = {"AZURE_OPENAI_API_KEY": "azure-secret", "TENANT_ID": "tenant-guid",
               "OPENAI_API_KEY": "openai-secret"}


def base() -> dict[str, Any]:
    return {
        "models": [{"name": "gpt-4o", "provider": "mock"}, {"name": "echo", "provider": "mock"}],
        "auth": {"issuers": [{"name": "idp", "issuer": "https://idp.example.com",
                              "jwks_url": "https://idp.example.com/keys",
                              "audiences": ["rolegate"]}]},
        "policy": [{"name": "users", "when": {"roles": ["user"]},
                    "allow": {"routes": ["inference"], "models": ["*"]}}],
    }


def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        validate_settings(data, source="test.yaml")
    return caught.value.problems


def problems_of_text(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings(textwrap.dedent(text), source="test.yaml", environ=environ or {})
    return caught.value.problems


def issuer(**overrides: Any) -> dict[str, Any]:
    data = base()
    data["auth"]["issuers"][0].update(overrides)
    for key in [k for k, v in overrides.items() if v is None]:
        del data["auth"]["issuers"][0][key]
    return data


def test_base_configuration_is_valid():
    settings = validate_settings(base(), source="test.yaml")
    assert isinstance(settings, Settings)
    assert settings.auth.issuers[0].algorithms[0] == "RS256"


# --- interpolation -----------------------------------------------------------------------------

def test_both_interpolation_forms_take_values_from_the_given_environment():
    text = """
      models:
        - {name: gpt-4o, provider: openai, api_base: "https://${HOST}/v1", api_key: "${env:KEY}"}
      auth:
        issuers:
          - {name: idp, issuer: "https://login.example.com/${TENANT}/v2.0",
             jwks_url: "https://login.example.com/${env:TENANT}/keys", audiences: [rolegate]}
      policy:
        - {name: users, when: {roles: [user]}, allow: {routes: [inference], models: ["*"]}}
    """
    settings = parse_settings(textwrap.dedent(text), source="t", environ={
        "HOST": "api.example.com", "KEY": "sk-secret", "TENANT": "t-1"})
    deployment = settings.models[0].deployments[0]
    assert deployment.api_base == "https://api.example.com/v1"
    assert deployment.api_key is not None and deployment.api_key.get_secret_value() == "sk-secret"
    assert settings.auth.issuers[0].issuer == "https://login.example.com/t-1/v2.0"
    assert settings.auth.issuers[0].jwks_url == "https://login.example.com/t-1/keys"


def test_secret_value_is_not_shown_when_settings_are_printed():
    text = ("models: [{name: m, provider: openai, api_base: 'http://x/v1', api_key: '${K}'}]\n"
            "auth: {dev_issuer: {enabled: true}}\n")
    settings = parse_settings(text, source="t", environ={"K": "sk-very-secret"})
    assert "sk-very-secret" not in repr(settings)
    assert "sk-very-secret" not in str(settings.model_dump())


def test_every_missing_variable_is_named_with_its_path():
    problems = problems_of_text("""
      models:
        - {name: gpt-4o, provider: openai, api_base: "https://x/v1", api_key: "${API_KEY}"}
      auth:
        issuers:
          - {name: idp, issuer: "https://x/${env:TENANT_ID}", jwks_url: https://x/k,
             audiences: [a]}
    """)
    assert problems == [
        "test.yaml:3:64: models[0].api_key: environment variable API_KEY is not set",
        "test.yaml:6:19: auth.issuers[0].issuer: environment variable TENANT_ID is not set",
    ]


def test_values_that_merely_look_like_references_are_left_alone():
    text = ("models: [{name: m, provider: mock, model: '$HOME-${1X}-${}'}]\n"
            "auth: {dev_issuer: {enabled: true}}\n")
    settings = parse_settings(text, source="t", environ={})
    assert settings.models[0].deployments[0].model == "$HOME-${1X}-${}"


def test_an_interpolated_value_is_not_parsed_as_yaml():
    text = ("models: [{name: m, provider: mock, model: '${V}'}]\n"
            "auth: {dev_issuer: {enabled: true}}\n")
    settings = parse_settings(text, source="t", environ={"V": "x\npolicy: [evil]"})
    assert settings.models[0].deployments[0].model == "x\npolicy: [evil]"
    assert settings.policy == ()


# --- reading the file --------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["models: [", "a: b: c", "models:\n\t- name: x\n",
                                  "!!python/object:os.system {}"],
                         ids=["unclosed", "nested-colon", "tab", "python-tag"])
def test_invalid_yaml_is_one_clear_problem(text):
    problems = problems_of_text(text)
    assert len(problems) == 1
    assert problems[0].removeprefix("test.yaml:").split(": ", 1)[1].startswith("not valid YAML")


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string", "42"])
def test_top_level_that_is_not_a_mapping_is_refused(text):
    assert problems_of_text(text) == ["the top level must be a mapping"]


def test_empty_file_needs_an_issuer():
    problems = problems_of_text("")
    assert len(problems) == 1 and "no issuer is configured" in problems[0]


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "absent.yaml")
    assert caught.value.problems[0].startswith("cannot read the file")
    assert str(tmp_path / "absent.yaml") in str(caught.value)


def test_directory_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path)
    assert caught.value.problems[0].startswith("cannot read the file")


def test_file_that_is_not_utf8_is_a_config_error(tmp_path):
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"models: [\xff\xfe\x00]\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "UTF-8" in caught.value.problems[0]


def test_load_settings_reads_a_file_with_the_given_environment(tmp_path):
    path = tmp_path / "rolegate.yaml"
    path.write_text(yaml.safe_dump(base()).replace("rolegate", "${AUD}"))
    settings = load_settings(path, environ={"AUD": "api://from-env"})
    assert settings.auth.issuers[0].audiences == ("api://from-env",)


# --- schema ------------------------------------------------------------------------------------

def test_unknown_keys_are_reported_with_their_paths():
    data = base()
    data["auth"]["issuers"][0]["jwks_uri"] = "https://typo"
    data["policy"][0]["when"]["role"] = ["user"]
    data["servr"] = {}
    problems = problems_of(data)
    assert "auth.issuers[0].jwks_uri: unknown key (check its spelling)" in problems
    assert "policy[0].when.role: unknown key (check its spelling)" in problems
    assert "servr: unknown key (check its spelling)" in problems


def test_several_schema_problems_are_reported_together():
    data = base()
    data["models"][0]["provider"] = "no-such-provider"
    del data["auth"]["issuers"][0]["audiences"]
    data["server"] = {"port": 70000}
    problems = problems_of(data)
    assert len(problems) == 3
    assert any(p.startswith("models[0].provider:") for p in problems)
    assert any(p.startswith("auth.issuers[0].audiences:") for p in problems)
    assert any(p.startswith("server.port:") for p in problems)


@pytest.mark.parametrize("algorithms", [["HS256"], ["RS256", "HS512"], ["none"], ["RS256", "None"],
                                        []], ids=["hs256", "hs512-among-others", "none",
                                                  "None", "empty"])
def test_symmetric_none_or_no_algorithms_are_refused(algorithms):
    problems = problems_of(issuer(algorithms=algorithms))
    assert len(problems) == 1
    assert problems[0].startswith("auth.issuers[0].algorithms:")


def test_single_string_is_accepted_where_a_list_is_expected():
    data = issuer(algorithms="ES256", audiences="rolegate")
    data["policy"][0]["when"]["roles"] = "user"
    settings = validate_settings(data, source="t")
    assert settings.auth.issuers[0].algorithms == ("ES256",)
    assert settings.policy[0].when.roles == ("user",)


def test_issuer_template_without_tenants_is_refused():
    problems = problems_of(issuer(issuer="https://login.microsoftonline.com/{tenantid}/v2.0"))
    assert len(problems) == 1
    assert "needs a `tenants` allow-list" in problems[0]
    validate_settings(issuer(issuer="https://login.microsoftonline.com/{tenantid}/v2.0",
                             tenants=["*"]), source="t")


@pytest.mark.parametrize("overrides", [
    {"discovery_url": "https://idp.example.com/.well-known/openid-configuration"},
    {"jwks_url": None},
], ids=["both", "neither"])
def test_exactly_one_key_source_is_required(overrides):
    problems = problems_of(issuer(**overrides))
    assert problems == ["auth.issuers[0]: give exactly one of jwks_url or discovery_url"]


def test_issuer_problems_are_reported_together():
    problems = problems_of(issuer(jwks_url=None,
                                  issuer="https://login.microsoftonline.com/{tenantid}/v2.0"))
    assert len(problems) == 1
    assert "jwks_url or discovery_url" in problems[0] and "tenants" in problems[0]


@pytest.mark.parametrize("field, value", [("leeway", -1), ("leeway", 601), ("jwks_ttl", 0),
                                          ("jwks_max_stale", -1),
                                          ("jwks_refreshes_per_minute", 0),
                                          ("preset", "google"), ("audiences", [])])
def test_out_of_range_issuer_settings_are_refused(field, value):
    problems = problems_of(issuer(**{field: value}))
    assert len(problems) == 1 and problems[0].startswith(f"auth.issuers[0].{field}")


@pytest.mark.parametrize(("model", "fragment"), [
    ({"name": "m", "provider": "openai"}, "provider openai needs api_base"),
    ({"name": "m", "provider": "azure", "api_base": "https://x"},
     "provider azure needs deployment and api_version"),
    ({"name": "", "provider": "mock"}, "at least 1 character"),
    ({"name": "m", "provider": "anthropic"}, "provider anthropic needs api_base"),
    ({"name": "m", "provider": "anthropic", "api_base": "https://x", "auth": {
        "type": "entra_client_credentials", "client_id": "a", "client_secret": "s",
        "token_url": "https://login/token"}},
     "provider anthropic signs in with api_key, not auth"),
    ({"name": "m", "provider": "gemini"}, "provider gemini signs in with api_key"),
    ({"name": "m", "provider": "vertex", "project": "p"},
     "provider vertex needs project and location"),
    ({"name": "m", "provider": "vertex", "project": "p", "location": "us-central1",
      "api_key": "k"}, "not api_key or auth"),
    ({"name": "m", "provider": "vertex", "project": "p", "location": "../evil"},
     "should match pattern"),
    ({"name": "m", "provider": "mock", "project": "p"}, "are for provider vertex"),
])
def test_model_problems_name_the_missing_field(model, fragment):
    data = base()
    data["models"].append(model)
    problems = problems_of(data)
    assert len(problems) == 1
    assert problems[0].startswith("models[2]") and fragment in problems[0]


@pytest.mark.parametrize("when", [{}, {"authenticated": False}, {"roles": []},
                                  {"claims": {}}], ids=["empty", "authenticated-false",
                                                        "empty-list", "empty-claims"])
def test_rule_with_no_condition_is_refused(when):
    data = base()
    data["policy"][0]["when"] = when
    problems = problems_of(data)
    assert len(problems) == 1
    assert problems[0].startswith("policy[0].when:")
    assert "authenticated: true" in problems[0]


def test_rule_without_routes_is_refused():
    data = base()
    data["policy"][0]["allow"] = {"models": ["*"]}
    assert problems_of(data)[0].startswith("policy[0].allow.routes:")


# --- cross-references --------------------------------------------------------------------------

def test_cross_reference_problems_are_reported_together_with_the_fix():
    data = base()
    data["policy"].append({"name": "bad", "when": {"issuers": ["okta"]},
                           "allow": {"routes": ["inferense", "/v1/audio/*"],
                                     "models": ["claude-*", "gpt-*"]}})
    problems = problems_of(data)
    assert problems == [
        "policy[1] (bad).allow.routes: unknown route group 'inferense' "
        "(known: inference, info, admin, mcp, console, or a path like /v1/audio/*)",
        "policy[1] (bad).allow.models: 'claude-*' matches no model (known: gpt-4o, echo)",
        "policy[1] (bad).when.issuers: unknown issuer 'okta' (known: idp)",
    ]


def test_development_issuer_is_a_known_issuer_name_when_enabled():
    data = base()
    data["auth"]["dev_issuer"] = {"enabled": True}
    data["policy"][0]["when"] = {"issuers": ["dev"]}
    validate_settings(data, source="t")
    del data["auth"]["dev_issuer"]
    assert "unknown issuer 'dev'" in problems_of(data)[0]


@pytest.mark.parametrize("section", ["models", "issuers", "policy"])
def test_duplicate_names_are_refused(section):
    data = base()
    if section == "models":
        data["models"].append({"name": "echo", "provider": "mock"})
        expected = "models: the name 'echo' is used 2 times"
    elif section == "issuers":
        data["auth"]["issuers"].append(dict(data["auth"]["issuers"][0]))
        expected = "auth.issuers: the name 'idp' is used 2 times"
    else:
        data["policy"].append(dict(data["policy"][0]))
        expected = "policy: the name 'users' is used 2 times"
    problems = problems_of(data)
    assert len(problems) == 1 and problems[0].startswith(expected)


def test_no_issuer_at_all_is_refused():
    data = base()
    data["auth"] = {}
    assert problems_of(data) == [
        "auth: no issuer is configured, so no request could ever be authenticated "
        "(add auth.issuers or enable auth.dev_issuer)"]


def test_config_error_message_lists_every_problem_under_the_source():
    error = ConfigError("rolegate.yaml", ["first", "second"])
    assert str(error) == ("rolegate.yaml: 2 problem(s) in the configuration:\n"
                          "  - first\n  - second")


# --- the examples ------------------------------------------------------------------------------

@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_are_valid(path):
    settings = load_settings(path, environ=EXAMPLE_ENV)
    assert settings.policy and settings.auth.issuers


def test_examples_need_their_environment():
    with pytest.raises(ConfigError) as caught:
        load_settings(EXAMPLES / "entra.yaml", environ={})
    assert any("TENANT_ID is not set" in p for p in caught.value.problems)
    assert any("entra.yaml:" in p and
               "models[0].api_key: environment variable AZURE_OPENAI_API_KEY" in p
               for p in caught.value.problems)


# --- every problem in one pass, with its line and column ---------------------------------------

def test_independent_mistakes_are_all_reported_in_one_run_with_their_lines():
    """An empty `when: {}` used to hide the cross-reference problems; now the schema's and the
    cross-references of whatever is valid come out together, each at its place in the file."""
    problems = problems_of_text("""\
        models:
          - name: gpt-4o
            provider: mock
            colour: blue
          - name: small
            provider: mock
            fallbacks: [gpt-5]
        auth:
          issuers:
            - name: corp
              issuer: https://idp.example.com
              jwks_url: https://idp.example.com/keys
        policy:
          - name: everyone
            when: {}
            allow: {routes: [inference], models: [gpt-4o]}
          - name: users
            when: {roles: [user], issuers: [other]}
            allow: {routes: [inference, chat], models: [gpt-4o, claude-*]}
        """)
    assert problems == [
        "test.yaml:4:5: models[0].colour: unknown key (check its spelling)",
        "test.yaml:10:7: auth.issuers[0].audiences: Field required",
        "test.yaml:15:5: policy[0].when: a rule needs at least one condition; to grant every "
        "authenticated caller say `authenticated: true`",
        "test.yaml:7:17: models[1] (small).fallbacks: unknown model 'gpt-5' "
        "(known: gpt-4o, small)",
        "test.yaml:19:33: policy[1] (users).allow.routes: unknown route group 'chat' "
        "(known: inference, info, admin, mcp, console, or a path like /v1/audio/*)",
        "test.yaml:19:57: policy[1] (users).allow.models: 'claude-*' matches no model "
        "(known: gpt-4o, small)",
        "test.yaml:18:37: policy[1] (users).when.issuers: unknown issuer 'other' "
        "(known: corp)",
    ]


def test_a_key_given_twice_is_an_error_at_its_second_place():
    problems = problems_of_text("""\
        models:
          - name: gpt-4o
            provider: mock
            provider: mock
        auth: {dev_issuer: {enabled: true}}
        auth: {dev_issuer: {enabled: true}}
        """)
    assert problems == [
        "test.yaml:4:5: models[0].provider: duplicate key (first given on line 3); "
        "give each key once",
        "test.yaml:6:1: auth: duplicate key (first given on line 5); give each key once",
    ]


def test_a_duplicate_key_is_found_inside_an_aliased_block_once():
    problems = problems_of_text("""\
        base: &base {name: m, name: n}
        models: [*base]
        """)
    assert [p for p in problems if "duplicate key" in p] == [
        "test.yaml:1:23: base.name: duplicate key (first given on line 1); give each key once"]


def test_a_litellm_config_is_recognised_and_pointed_to_the_importer():
    problems = problems_of_text("""\
        model_list:
          - model_name: gpt-4o
            litellm_params: {model: openai/gpt-4o}
        general_settings: {master_key: sk-1234}
        """)
    assert len(problems) == 1
    assert problems[0].startswith("test.yaml:1:1: model_list: this is a LiteLLM proxy config "
                                  "(model_list, general_settings); rolegate's format differs")
    assert "`rolegate import litellm FILE`" in problems[0]


def test_a_yaml_syntax_error_names_its_line_and_column():
    assert problems_of_text("models:\n  - name: [x\n") == [
        "test.yaml:3:1: not valid YAML: while parsing a flow sequence expected ',' or ']', "
        "but got '<stream end>'"]


def test_check_prints_every_problem_unwrapped_with_file_positions(tmp_path):
    from typer.testing import CliRunner

    from rolegate.cli.commands import cli

    config = tmp_path / "bad.yaml"
    config.write_text("models:\n  - {name: m, provider: mock, extra: 1}\n"
                      "policy:\n  - {name: r, when: {}, allow: {routes: [inference], "
                      "models: [nope-" + "x" * 80 + "]}}\n")
    result = CliRunner().invoke(cli, ["check", "--config", str(config)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert f"  - {config}:2:31: models[0].extra: unknown key (check its spelling)" in lines
    assert any(line.startswith(f"  - {config}:4:15: policy[0].when: a rule needs")
               and line.endswith("`authenticated: true`") for line in lines)
    assert any(f"{config}:4:63: policy[0] (r).allow.models: 'nope-{'x' * 80}' matches no model"
               in line for line in lines)


_SCALARS = st.none() | st.booleans() | st.integers(-2, 70000) | st.sampled_from(
    ["", "*", "x", "mock", "inference", "https://idp.example.com", "${UNSET}"])
_KEYS = st.sampled_from(["name", "provider", "deployments", "fallbacks", "when", "allow",
                         "routes", "models", "roles", "issuers", "audiences", "issuer",
                         "metrics", "path", "enabled", "url", "port", "pepper"])


def _nested(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=4)


_VALUES = st.recursive(_SCALARS, _nested, max_leaves=12)


@hypothesis_settings(max_examples=150, deadline=None)
@given(data=st.dictionaries(st.sampled_from(["models", "auth", "policy", "server", "keys",
                                             "database", "limits", "routing"]), _VALUES))
def test_any_shape_of_config_is_either_settings_or_a_list_of_problems(data):
    """Salvaging the valid parts of a broken configuration never raises anything else."""
    try:
        parse_settings(yaml.safe_dump(data), source="f.yaml", environ={})
    except ConfigError as error:
        assert error.problems and all(isinstance(p, str) for p in error.problems)


def test_a_broken_list_item_keeps_the_indexes_and_lines_of_the_ones_after_it():
    problems = problems_of_text("""\
        models: [{name: m, provider: mock}]
        auth: {dev_issuer: {enabled: true}}
        policy:
          - just a string
          - {when: {roles: [a]}, allow: {routes: [inference]}}
          - {name: r, when: {roles: [a]}, allow: {routes: [inference], models: [nope]}}
          - {name: r, when: {roles: [b]}, allow: {routes: [info]}}
        """)
    assert [p for p in problems if "policy[0]" not in p and "policy[1]" not in p] == [
        "test.yaml:7:6: policy: the name 'r' is used 2 times (names must be unique)",
        "test.yaml:6:73: policy[2] (r).allow.models: 'nope' matches no model (known: m)",
    ]
    assert any(p.startswith("test.yaml:5:5: policy[1].name: Field required") for p in problems)


def test_a_vertex_deployment_whose_key_file_cannot_be_read_is_a_start_up_error(tmp_path):
    data = base()
    data["models"].append({"name": "v", "provider": "vertex", "project": "p",
                           "location": "us-central1",
                           "credentials_file": str(tmp_path / "missing.json")})
    settings = validate_settings(data, source="test")
    deployment = settings.models[-1].deployments[0]
    with pytest.raises(ConfigError, match="cannot load Google credentials"):
        build_provider(deployment, HttpClient(), lambda: 0.0, TokenEstimator())
