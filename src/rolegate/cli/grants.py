"""What `keys create` and `keys update` share: reading their options (expiry, control
characters) and the warnings they give when a key's roles or models would grant nothing under
the configuration's policy and models."""

from __future__ import annotations

from fnmatch import fnmatchcase

import typer

from rolegate.accounting.period import parse_instant
from rolegate.admin.schemas import has_control_character
from rolegate.cli.options import err
from rolegate.config.model import Settings

LIMIT_OPTIONS = ("rpm", "tpm", "daily_tokens", "monthly_budget_usd")


def grant_warnings(settings: Settings, roles: tuple[str, ...],
                   models: tuple[str, ...] | None) -> list[str]:
    """Why a key with these roles and model globs may get less than its creator expects."""
    named = {role for rule in settings.policy for role in rule.when.roles}
    warnings = [f"role {role!r} is named by no policy rule (when.roles), so it grants nothing"
                for role in roles if role not in named]
    known = [model.name for model in settings.models]
    warnings += [f"--models {pattern!r} matches no configured model "
                 f"(known: {', '.join(known) or 'none'})"
                 for pattern in models or () if not any(fnmatchcase(n, pattern) for n in known)]
    return warnings


def print_warnings(warnings: list[str]) -> None:
    for warning in warnings:
        err.print(f"[yellow]warning:[/yellow] {warning}", soft_wrap=True, highlight=False,
                  markup=True)


def expiry(expires_in: str, now: float) -> float:
    """The moment `--expires-in 90d` names; exits 1 with the reason when it names none."""
    try:
        return now + (now - parse_instant(expires_in, now))
    except ValueError as exc:
        err.print(f"[red]--expires-in: {exc}[/red]")
        raise typer.Exit(1) from None


def refuse_control_characters(**options: str | None) -> None:
    for option, value in options.items():
        if value is not None and has_control_character(value):  # as the admin API refuses them
            err.print(f"[red]--{option} must not contain control characters[/red]")
            raise typer.Exit(1)
