"""The `rolegate` command: serve | check | dev-token | explain | keys | usage | db | audit."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, Literal, TypedDict, cast

import typer
from rich.table import Table

from rolegate.authn.dev_issuer import STATE_FILE, DevIssuer
from rolegate.cli import data
from rolegate.cli.audit import audit_cli
from rolegate.cli.options import (
    DEFAULT_STATE_DIR, ConfigOption, StateDirOption, err, out, settings_for, split,
)
from rolegate.config.launch import LaunchOptions
from rolegate.errors import GatewayError
from rolegate.keys.material import is_api_key

cli = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="rolegate: an OpenAI-compatible LLM gateway with strict JWT auth.")


class _UvicornOptions(TypedDict):
    """The keyword arguments `serve` gives `uvicorn.run`, typed as uvicorn declares them."""

    host: str
    port: int
    log_level: str
    access_log: bool
    lifespan: Literal["auto", "on", "off"]
    loop: str
    http: type[asyncio.Protocol]
    proxy_headers: bool
    server_header: bool
    timeout_keep_alive: int


cli.add_typer(data.keys_cli, name="keys")
cli.add_typer(data.db_cli, name="db")
cli.add_typer(audit_cli, name="audit")
cli.command("usage")(data.usage)


@cli.command()
def serve(config: ConfigOption = None,
          host: Annotated[str | None, typer.Option(help="Override server.host.")] = None,
          port: Annotated[int | None, typer.Option(help="Override server.port.")] = None,
          workers: Annotated[int, typer.Option(
              min=1, help="Worker processes, one event loop each (use one per core).")] = 1,
          state_dir: StateDirOption = DEFAULT_STATE_DIR) -> None:
    """Run the gateway (no --config: the embedded defaults: mock model, development issuer)."""
    import uvicorn

    from rolegate.app import build_app, dev_issuer_url
    from rolegate.observability.logging import configure_logging
    from rolegate.server.protocol import bounded_protocol

    settings = settings_for(config, host=host, port=port, state_dir=state_dir)
    configure_logging(settings.logging.level)
    dev_issuer = None
    if settings.auth.dev_issuer.enabled:
        dev = settings.auth.dev_issuer
        dev_issuer = DevIssuer.generate(dev_issuer_url(settings), dev.audience, dev.token_ttl)
        saved = dev_issuer.save(state_dir)
        err.print(f"Development issuer on (key in {saved}). Get a token with:\n"
                  f"  rolegate dev-token --state-dir {state_dir}\n"
                  f"  curl -H \"Authorization: Bearer $(rolegate dev-token)\" "
                  f"http://{settings.server.host}:{settings.server.port}/v1/models",
                  soft_wrap=True, highlight=False)
    # loop "auto" picks uvloop (installed with uvicorn[standard]); the HTTP protocol is uvicorn's
    # httptools one with header size, header and body time bounded (server/protocol.py).
    # No proxy-header rewriting (nothing reads the client address) and no Server header.
    limits = settings.server
    http = bounded_protocol(max_header_bytes=limits.max_header_bytes,
                            header_timeout=limits.header_timeout,
                            body_timeout=limits.body_timeout)
    server: _UvicornOptions = {
        "host": limits.host, "port": limits.port,
        "log_level": "warning", "access_log": False, "lifespan": "on", "loop": "auto",
        # uvicorn calls `http` as a protocol factory; its annotation only names classes.
        "http": cast("type[asyncio.Protocol]", http),
        "proxy_headers": False, "server_header": False,
        # Annotated `int` by uvicorn, which only hands it to `loop.call_later` (float seconds).
        "timeout_keep_alive": limits.keep_alive_timeout,  # type: ignore[typeddict-item]
    }
    if workers == 1:
        uvicorn.run(build_app(settings, dev_issuer=dev_issuer), **server)
        return
    # Each worker builds its own app from the same options and the key saved above.
    LaunchOptions(config, host, port, state_dir).export()
    uvicorn.run("rolegate.app:create_app_from_env", factory=True, workers=workers, **server)


@cli.command()
def check(config: Annotated[Path, typer.Argument(help="YAML config file.")]) -> None:
    """Validate a configuration and print its policy."""
    settings = settings_for(config)
    table = Table(title=f"policy of {config}")
    for column in ("rule", "when", "routes", "models"):
        table.add_column(column)
    for rule in settings.policy:
        when = rule.when.model_dump(exclude_defaults=True)
        table.add_row(rule.name, ", ".join(f"{k}={v}" for k, v in when.items()),
                      ", ".join(rule.allow.routes), ", ".join(rule.allow.models) or "-")
    out.print(table)
    issuers = ", ".join(f"{i.name} ({i.preset})" for i in settings.auth.issuers) or "none"
    out.print(f"issuers: {issuers}; models: {', '.join(m.name for m in settings.models)}")
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
    token: Annotated[str, typer.Option(help="The bearer token; '-' reads it from stdin.")],
    route: Annotated[str, typer.Option(help="Route group (inference, info, admin) or a path.")],
    config: ConfigOption = None,
    model: Annotated[str | None, typer.Option(help="The model asked for.")] = None,
    jwks: Annotated[Path | None, typer.Option(
        help="A JWKS file to verify with instead of fetching the issuer's keys.",
        exists=True, dir_okay=False, readable=True)] = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
) -> None:
    """Explain the decision for a token or API key: verification, principal, every rule."""
    from rolegate.explain import explain as run_explain
    from rolegate.cli.render import render_explanation

    settings = settings_for(config)
    issuers = list(settings.auth.issuers)
    if settings.auth.dev_issuer.enabled and (state_dir / STATE_FILE).exists():
        issuers.append(DevIssuer.load(state_dir).issuer_config())
    if token == "-":
        token = sys.stdin.read().strip()
    try:
        if is_api_key(token):
            report = data.explain_key(settings, token, route, model)
        else:
            report = asyncio.run(run_explain(settings, issuers, token, route, model,
                                             _fetcher(jwks, state_dir)))
    except GatewayError as error:  # e.g. a --route that no request could take
        err.print(f"[red]{error.message}[/red]")
        raise typer.Exit(2) from None
    render_explanation(out, report)
    raise typer.Exit(0 if report.allowed else 1)


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
