"""Rendering an `Explanation` for a terminal with rich."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from rolegate.explain import Explanation


def render_explanation(console: Console, report: Explanation) -> None:
    steps = Table(title="verification", show_header=False)
    for name, is_ok, detail in report.steps:
        steps.add_row(name, "[green]ok[/green]" if is_ok else "[red]FAILED[/red]", detail)
    console.print(steps)
    if report.principal is not None:
        who = report.principal
        principal = Table(title="principal" + ("" if report.is_verified else " (UNVERIFIED)"),
                          show_header=False)
        for label, value in (("issuer", who.issuer), ("subject", who.subject),
                             ("client id", who.client_id), ("tenant", who.tenant),
                             ("roles", sorted(who.roles)), ("scopes", sorted(who.scopes)),
                             ("groups", sorted(who.groups)), ("end user", who.end_user)):
            principal.add_row(label, str(value))
        console.print(principal)
    if report.action is not None and report.rules:
        rules = Table(title=f"rules for {report.action.describe()}")
        for column in ("rule", "caller matches", "grants route", "grants target", "result"):
            rules.add_column(column)
        for rule in report.rules:
            rules.add_row(rule.name, "yes" if not rule.unmet else "no: " + "; ".join(rule.unmet),
                          _yes(rule.grants_route), _yes(rule.grants_model),
                          "[green]grants[/green]" if rule.is_granting else "-")
        console.print(rules)
    colour = "green" if report.allowed else "red"
    console.print(f"[bold {colour}]decision: {report.summary}[/bold {colour}]")


def _yes(value: bool) -> str:
    return "yes" if value else "no"
