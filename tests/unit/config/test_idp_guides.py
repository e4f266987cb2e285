"""The identity-provider guides in docs/: every YAML block is a complete configuration that the
settings loader accepts (as `rolegate check` would), with placeholder values for `${NAME}`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rolegate.config.load import parse_settings

DOCS = Path(__file__).resolve().parents[3] / "docs"
GUIDES = {"idp-entra.md": "entra", "idp-okta.md": "okta", "idp-auth0.md": "auth0",
          "idp-keycloak.md": "keycloak"}
_YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_REFERENCE = re.compile(r"\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)\}")


def placeholders(text: str) -> dict[str, str]:
    """A value for each referenced variable: tenant ids as GUIDs, domains as hosts."""
    values = {}
    for index, name in enumerate(sorted(set(_REFERENCE.findall(text)))):
        if name.endswith(("TENANT_ID", "APP_ID")):
            values[name] = f"00000000-0000-4000-8000-{index:012d}"
        elif name.endswith("DOMAIN"):
            values[name] = "tenant.idp.example"
        else:
            values[name] = "placeholder-secret"
    return values


def yaml_blocks(guide: str) -> list[str]:
    return _YAML_BLOCK.findall((DOCS / guide).read_text(encoding="utf-8"))


@pytest.mark.parametrize("guide", sorted(GUIDES))
def test_every_yaml_block_of_an_identity_provider_guide_is_a_valid_configuration(
        guide: str) -> None:
    blocks = yaml_blocks(guide)
    assert blocks, f"{guide} has no YAML configuration"
    for number, block in enumerate(blocks, start=1):
        settings = parse_settings(block, source=f"{guide} block {number}",
                                  environ=placeholders(block))
        assert settings.policy, f"{guide} block {number} has no policy"
        presets = {issuer.preset for issuer in settings.auth.issuers}
        assert presets == {GUIDES[guide]}, f"{guide} block {number} uses presets {presets}"
        issuer_names = {issuer.name for issuer in settings.auth.issuers}
        for rule in settings.policy:
            assert set(rule.when.issuers) <= issuer_names, (guide, rule.name)
            assert rule.when.issuers, f"{guide}: rule {rule.name} should name its issuer"


def test_the_entra_guide_names_no_litellm_role_or_audience_in_its_configurations() -> None:
    """The LiteLLM names of examples/entra.yaml are explained in prose, not copied."""
    for block in yaml_blocks("idp-entra.md"):
        assert "LiteLLM" not in block
