"""The `rolegate` command: serve | check | dev-token | explain | keys | usage | db | audit |
import."""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from rolegate.authn.dev_issuer import STATE_FILE, DevIssuer
from rolegate.cli import data, keys
from rolegate.cli.audit import audit_cli
from rolegate.cli.importing import import_cli
from rolegate.cli.mcp_target import mcp_target
from rolegate.cli.options import (
    DEFAULT_STATE_DIR, ConfigOption, JsonOption, StateDirOption, err, out, print_json,
    settings_for, split,
)
from rolegate.config.launch import LaunchOptions
from rolegate.config.load import ConfigError, load_settings, read_pepper
from rolegate.config.model import IssuerConfig, LoggingConfig, Settings
from rolegate.errors import GatewayError
from rolegate.keys.material import is_api_key

if TYPE_CHECKING:  # imported by the commands that use them, so `rolegate --help` stays quick
    from rolegate.authn.jwks import Fetch
    from rolegate.authz.model import McpTarget
    from rolegate.explain import Explanation

cli = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="rolegate: an OpenAI-compatible LLM gateway with strict JWT auth.")


def _print_version(is_asked: bool) -> None:
    if is_asked:
        print(f"rolegate {version('rolegate')}")
        raise typer.Exit()


@cli.callback()
def _root(show_version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True,
        help="Print the version and exit.")] = False) -> None:
    """rolegate: an OpenAI-compatible LLM gateway with strict JWT auth."""


data.keys_cli.command("update")(keys.keys_update)
cli.add_typer(data.keys_cli, name="keys")
cli.add_typer(data.db_cli, name="db")
cli.add_typer(audit_cli, name="audit")
cli.add_typer(import_cli, name="import")
cli.command("usage")(data.usage)


@cli.command()
def serve(config: ConfigOption = None,
          host: Annotated[str | None, typer.Option(help="Override server.host.")] = None,
          port: Annotated[int | None, typer.Option(
              min=0, max=65535, help="Override server.port (0 picks a free one).")] = None,
          workers: Annotated[int, typer.Option(
              min=1, help="Worker processes, one event loop each (use one per core).")] = 1,
          state_dir: StateDirOption = DEFAULT_STATE_DIR) -> None:
    """Run the gateway (no --config: the embedded defaults: mock model, development issuer)."""
    from rolegate.cli import serving
    from rolegate.observability.logging import configure_process_logging

    try:
        settings = LaunchOptions(config, host, port, state_dir).settings()
    except ConfigError as exc:  # its problems as a log line too, in the default format
        defaults = LoggingConfig()
        configure_process_logging(defaults.level, defaults.format)
        serving.fail(str(exc))
    # From here on every line, an error included, is a log line in `logging.format`.
    configure_process_logging(settings.logging.level, settings.logging.format)
    try:
        _serve(settings, config, host, port, workers, state_dir)
    except typer.Exit:
        raise
    except Exception:  # the command's top-level guard: one error line, not a traceback dump
        serving.crash()


def _serve(settings: Settings, config: Path | None, host: str | None, port: int | None,
           workers: int, state_dir: Path) -> None:
    from rolegate.app import build_app
    from rolegate.cli import serving

    serving.check_schema(settings, config, workers)
    dev_issuer, lock = serving.claim_state(settings, state_dir)
    try:
        if settings.keys.enabled:  # read here too, so a missing file ends `serve` once, not
            read_pepper(settings.keys)  # each worker
        metrics_dir = None
        if workers == 1:
            app: object = build_app(settings, dev_issuer=dev_issuer)
        else:  # each worker builds its own app from the same options and the key saved above
            metrics_dir = Path(tempfile.mkdtemp(prefix="rolegate-metrics-"))
            LaunchOptions(config, host, port, state_dir, mcp_session_key=secrets.token_hex(32),
                          console_session_key=secrets.token_hex(32),
                          metrics_dir=metrics_dir).export()
            app = "rolegate.app:create_app_from_env"
    except ConfigError as exc:  # a secret file the configuration names cannot be read
        serving.fail(str(exc))
    announce = serving.Announce(state_dir.resolve() if dev_issuer is not None else None)
    try:
        serving.run(serving.uvicorn_config(app, settings, workers), announce)
    finally:
        if metrics_dir is not None:  # the workers' metric files end with this serve
            shutil.rmtree(metrics_dir, ignore_errors=True)
        if lock is not None:
            lock.release()


@cli.command()
def check(path: Annotated[Path | None, typer.Argument(
              help="YAML config file (the same as --config).", show_default=False)] = None,
          config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Validate a configuration, reporting every problem with its line, and print its policy."""
    config = config or path
    if config is None:
        err.print("[red]Give the configuration file: rolegate check --config FILE[/red]")
        raise typer.Exit(1)
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        if as_json:
            print_json({"source": str(config), "valid": False, "problems": exc.details})
        else:
            err.print(escape(str(exc)), style="red", soft_wrap=True, highlight=False)
        raise typer.Exit(1) from None
    rules: list[dict[str, Any]] = [
        {"rule": rule.name, "when": rule.when.model_dump(exclude_defaults=True, mode="json"),
         "routes": list(rule.allow.routes), "models": list(rule.allow.models)}
        for rule in settings.policy]
    if as_json:
        print_json({"source": str(config), "valid": True, "problems": [], "policy": rules,
                    "issuers": [{"name": i.name, "preset": i.preset}
                                for i in settings.auth.issuers],
                    "models": [m.name for m in settings.models]})
        return
    table = Table(title=f"policy of {config}")
    for column in ("rule", "when", "routes", "models"):
        table.add_column(column, overflow="fold")
    for rule in rules:
        table.add_row(str(rule["rule"]), ", ".join(f"{k}={v}" for k, v in rule["when"].items()),
                      ", ".join(rule["routes"]), ", ".join(rule["models"]) or "-")
    out.print(table)
    issuers = ", ".join(f"{i.name} ({i.preset})" for i in settings.auth.issuers) or "none"
    out.print(f"issuers: {issuers}; models: {', '.join(m.name for m in settings.models)}",
              soft_wrap=True, highlight=False)
    out.print("[green]configuration is valid[/green]")


@cli.command("dev-token")
def dev_token(
    roles: Annotated[str, typer.Option(help="Comma-separated roles.")] = "rolegate.user",
    scopes: Annotated[str, typer.Option(help="Comma-separated scopes.")] = "",
    subject: Annotated[str, typer.Option(help="The `sub` claim.")] = "dev-user",
    ttl: Annotated[int | None, typer.Option(help="Seconds until it expires.")] = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
) -> None:
    """Mint a token from the development issuer of a running `rolegate serve`."""
    if not (state_dir / STATE_FILE).exists():
        err.print(f"No development issuer in {state_dir}: start `rolegate serve` "
                  "(without --config) first, from this directory.")
        raise typer.Exit(1)
    issuer = DevIssuer.load(state_dir)
    print(issuer.mint(subject=subject, roles=split(roles), scopes=split(scopes), ttl=ttl))


@cli.command()
def explain(
    route: Annotated[str | None, typer.Option(
        help="Route group (inference, info, admin) or a path; `mcp` with --mcp-server.")] = None,
    token: Annotated[str | None, typer.Option(
        help="The bearer token or API key; '-' reads it from stdin.")] = None,
    key_id: Annotated[str | None, typer.Option(
        help="Or: the id of a virtual API key (looked up in the database).")] = None,
    claims: Annotated[str | None, typer.Option(
        help="Or: a token's claims as a JSON object ('-' reads it from stdin): what the "
        "policy decides for a valid token carrying them; nothing is verified.")] = None,
    config: ConfigOption = None,
    model: Annotated[str | None, typer.Option(help="The model asked for.")] = None,
    mcp_server: Annotated[str | None, typer.Option(
        help="An MCP server of `mcp.servers`: explain a request to it.")] = None,
    tool: Annotated[str | None, typer.Option(help="With --mcp-server: the tool called.")] = None,
    resource: Annotated[str | None, typer.Option(
        help="With --mcp-server: the resource URI read.")] = None,
    prompt: Annotated[str | None, typer.Option(
        help="With --mcp-server: the prompt asked for.")] = None,
    arguments: Annotated[str | None, typer.Option(
        help="With --tool: the call's arguments, a JSON object.")] = None,
    jwks: Annotated[Path | None, typer.Option(
        help="A JWKS file to verify with instead of fetching the issuer's keys.",
        exists=True, dir_okay=False, readable=True)] = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR, as_json: JsonOption = False,
) -> None:
    """Explain the decision for a token, an API key (or its id) or a set of claims:
    verification, principal, every rule."""
    from rolegate.cli.render import render_explanation

    given = [name for name, value in (("--token", token), ("--key-id", key_id),
                                      ("--claims", claims)) if value is not None]
    if len(given) != 1:
        err.print("Give one of --token, --key-id and --claims.")
        raise typer.Exit(2)
    target = mcp_target(mcp_server, tool, resource, prompt, arguments)
    if route is None and target is None:
        err.print("[red]Give --route, or --mcp-server (with --tool, --resource or "
                  "--prompt).[/red]")
        raise typer.Exit(2)
    settings = settings_for(config)
    issuers = list(settings.auth.issuers)
    if settings.auth.dev_issuer.enabled and (state_dir / STATE_FILE).exists():
        issuers.append(DevIssuer.load(state_dir).issuer_config())
    try:
        report = _explanation(settings, issuers, token, key_id, claims, route or "mcp", model,
                              target, _fetcher(jwks, state_dir))
    except GatewayError as error:  # e.g. a --route that no request could take
        err.print(f"[red]{error.message}[/red]")
        raise typer.Exit(2) from None
    if as_json:
        print_json(report.to_dict())
    else:
        render_explanation(out, report)
    raise typer.Exit(0 if report.allowed else 1)


def _explanation(settings: Settings, issuers: list[IssuerConfig], token: str | None,
                 key_id: str | None, claims: str | None, route: str, model: str | None,
                 target: McpTarget | None, fetch: Fetch) -> Explanation:
    """The report for whichever of `token`, `key_id` and `claims` is given."""
    from rolegate.explain import explain as run_explain
    from rolegate.explain import explain_claims

    if key_id is not None:
        return data.explain_key_id(settings, key_id, route, model)
    if claims is not None:
        return asyncio.run(explain_claims(settings, issuers, read_claims(claims), route, model))
    assert token is not None
    if token == "-":
        token = sys.stdin.read().strip()
    if is_api_key(token):
        return data.explain_key(settings, token, route, model)
    return asyncio.run(run_explain(settings, issuers, token, route, model, fetch, mcp=target))


def read_claims(text: str) -> dict[str, Any]:
    """`--claims`: a JSON object (from stdin for '-'); anything else ends the command."""
    if text == "-":
        text = sys.stdin.read()
    try:
        document = json.loads(text)
    except ValueError as exc:
        err.print(f"--claims is not JSON: {exc}")
        raise typer.Exit(2) from None
    if not isinstance(document, dict):
        err.print("--claims must be a JSON object, such as {\"iss\": ..., \"roles\": [...]}.")
        raise typer.Exit(2)
    return document


def _fetcher(jwks: Path | None, state_dir: Path):  # type: ignore[no-untyped-def]
    from rolegate.authn.jwks import KeySourceUnavailable

    async def fetch(url: str) -> bytes:
        if jwks is not None:
            return jwks.read_bytes()
        if url.endswith("/dev/jwks.json") and (state_dir / STATE_FILE).exists():
            return DevIssuer.load(state_dir).jwks_document()
        import urllib.request
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return bytes(response.read(512 * 1024))
        except OSError as exc:
            raise KeySourceUnavailable(f"GET {url} failed: {exc}") from None
    return fetch


def main() -> None:
    cli()
