"""`rolegate import litellm CONFIG`: a LiteLLM proxy config as a rolegate config (YAML on stdout
or in `-o FILE`), with a report on stderr of what each setting became or why it could not be
mapped, and whether the result passes the schema."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml

from rolegate.cli.options import err
from rolegate.config.litellm import import_litellm_file
from rolegate.config.load import ConfigError, validate_settings

class _PlainDumper(yaml.SafeDumper):
    """Every value written out in full: no `&anchor`/`*alias` in a config people read."""

    def ignore_aliases(self, data: object) -> bool:
        return True


import_cli = typer.Typer(no_args_is_help=True,
                         help="Write a rolegate configuration from another gateway's.")


@import_cli.command()
def litellm(config: Annotated[Path, typer.Argument(help="LiteLLM proxy config.yaml.")],
            output: Annotated[Path | None, typer.Option(
                "--output", "-o", help="Write here instead of stdout.")] = None) -> None:
    """From a LiteLLM proxy config.yaml: models, routing, JWT auth; deny by default."""
    try:
        settings, report = import_litellm_file(config)
    except ConfigError as exc:
        err.print(str(exc), style="red", soft_wrap=True, highlight=False, markup=False)
        raise typer.Exit(1) from None
    text = (f"# Written by `rolegate import litellm {config.name}`. Deny by default: only the "
            f"policy rules below grant anything.\n"
            + yaml.dump(settings, Dumper=_PlainDumper, sort_keys=False, allow_unicode=True))
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
    err.print(report.render(), end="", soft_wrap=True, highlight=False, markup=False)
    try:  # `${NAME}` left as written: the shape is checked, not the environment
        validate_settings(settings, source=str(output or "<stdout>"))
    except ConfigError as exc:
        err.print(f"schema: not yet valid; `rolegate check` will say:\n{exc}", soft_wrap=True,
                  highlight=False, markup=False)
    else:
        err.print("schema: valid (run `rolegate check` with the ${NAME} variables set)",
                  soft_wrap=True, highlight=False, markup=False)
