"""Every YAML block in the README parses and validates: a reader who copies one gets a
configuration rolegate accepts. A block that shows one section is completed with the
sections it leaves out (a mock model, the development issuer, virtual keys on SQLite)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from rolegate.config.load import ConfigError, parse_settings

README = Path(__file__).resolve().parents[3] / "README.md"
BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.MULTILINE | re.DOTALL)
COMPLETION = {
    "models": [{"name": "gpt-4o", "provider": "mock"}],
    "auth": {"dev_issuer": {"enabled": True}},
    "keys": {"enabled": True, "pepper": "a-pepper-of-sixteen-bytes-or-more"},
    "database": {"url": "sqlite+aiosqlite:///readme.db"},
}


REFERENCE = re.compile(r"\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)\}")


def environment_for(text: str) -> dict[str, str]:
    """An environment in which every `${NAME}` the text names is set (to a value naming it),
    and nothing else: variables read by convention (`HTTPS_PROXY`, `OTEL_*`) stay unset."""
    return {name: f"value-of-{name.lower()}" for name in REFERENCE.findall(text)}


def readme_blocks() -> list[tuple[int, str]]:
    text = README.read_text(encoding="utf-8")
    return [(text.count("\n", 0, match.start()) + 2, match.group(1))
            for match in BLOCK.finditer(text)]


def test_the_readme_has_yaml_blocks_to_check():
    assert len(readme_blocks()) >= 6


@pytest.mark.parametrize(("line", "block"), readme_blocks(),
                         ids=[f"README.md:{line}" for line, _ in readme_blocks()])
def test_readme_yaml_block_parses_and_validates(line, block):
    try:
        data = yaml.safe_load(block)
    except yaml.YAMLError as exc:
        pytest.fail(f"README.md block at line {line} is not valid YAML: {exc}")
    missing = {key: value for key, value in COMPLETION.items() if key not in data}
    text = block + (yaml.safe_dump(missing) if missing else "")
    try:
        parse_settings(text, source=f"README.md block at line {line}",
                       environ=environment_for(text))
    except ConfigError as exc:
        pytest.fail(str(exc))
