"""Benchmark modes: what to start, where to send load, with which wrk script and credentials.

A mode is registered as a factory `(RunContext) -> Mode`. Factories raise `Unavailable` when
the mode cannot run on this machine (no gateway installed, no --compare command); the runner
then reports the mode as skipped with that reason.
"""

from __future__ import annotations

import asyncio
import importlib.util
import secrets
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import free_port

AuthProvider = Callable[[], "str | None"]
CHAT_PATH = "/v1/chat/completions"
DEFAULT_GATEWAY_CMD = "rolegate serve --config {config} --port {port}"


class Unavailable(Exception):
    """The mode cannot run here; the message says why."""


def no_auth() -> str | None:
    return None


@dataclass
class RunContext:
    """What every mode factory may use: the shared upstream and the command templates."""

    upstream_root: str          # http://127.0.0.1:P
    upstream_pid: int
    upstream_ready_s: float
    workroot: Path              # per-run temp dir; modes make their own subdirectory
    jwks_dir: Path              # served by the upstream as GET /jwks/<name>.json
    gateway_cmd: str
    compare_cmd: str | None = None
    compare_auth: str | None = None

    @property
    def upstream(self) -> str:
        return self.upstream_root + "/v1"


@dataclass
class Mode:
    """One concrete thing to benchmark. argv None means nothing to start (load the upstream)."""

    name: str
    argv: list[str] | None
    url: str
    ready_url: str
    env: dict[str, str] = field(default_factory=dict)
    wrk_script: str = "chat.lua"
    auth: AuthProvider = no_auth
    baseline: str = "direct"    # the mode its added latency and ratio are measured against
    stream_probe: bool = True   # also run the sequential streaming TTFB probe
    services: list[Service] = field(default_factory=list)  # started first, stopped last
    cleanups: list[Callable[[], None]] = field(default_factory=list)  # run after the mode


@dataclass
class Service:
    """A helper process the gateway needs (Redis): ready once it accepts TCP on `port`."""

    name: str
    argv: list[str]
    port: int


POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def postgres_schema(name: str) -> tuple[str, Callable[[], None]]:
    """A fresh schema name in the local PostgreSQL (`test` database; the gateway creates it when
    it migrates at start-up) and the function that drops it; `Unavailable` when PostgreSQL
    cannot be reached."""
    schema = f"rolegate_bench_{secrets.token_hex(4)}"
    try:
        asyncio.run(_postgres("SELECT 1"))
    except (OSError, ImportError) as exc:
        raise Unavailable(f"PostgreSQL at 127.0.0.1:5432 (database test) unreachable for "
                          f"{name}: {type(exc).__name__}: {exc}") from None
    except Exception as exc:  # asyncpg's own errors: refused login, missing database
        raise Unavailable(f"PostgreSQL at 127.0.0.1:5432 (database test) refused {name}: "
                          f"{type(exc).__name__}: {exc}") from None

    def drop() -> None:
        asyncio.run(_postgres(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    return schema, drop


async def _postgres(statement: str) -> None:
    import asyncpg  # a rolegate dependency; imported here so the bench runs without it

    connection = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres",
                                       database="test", timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def redis_service(port: int) -> Service:
    """A throw-away Redis on 127.0.0.1:port, without persistence."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise Unavailable("redis-server not found (apt-get install -y redis-server)")
    return Service("redis", [binary, "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no"], port)


ModeFactory = Callable[[RunContext], Mode]
REGISTRY: dict[str, ModeFactory] = {}


def register(name: str, factory: ModeFactory) -> None:
    REGISTRY[name] = factory


def _direct(ctx: RunContext) -> Mode:
    return Mode("direct", None, ctx.upstream_root + CHAT_PATH, ctx.upstream_root + "/v1/models")


def _direct_stream(ctx: RunContext) -> Mode:
    return Mode("direct-stream", None, ctx.upstream_root + CHAT_PATH,
                ctx.upstream_root + "/v1/models", wrk_script="stream.lua",
                baseline="direct-stream", stream_probe=False)


def _compare(ctx: RunContext) -> Mode:
    if not ctx.compare_cmd:
        raise Unavailable("no --compare command given")
    port = free_port()
    argv = shlex.split(ctx.compare_cmd.format(port=port, upstream=ctx.upstream,
                                              upstream_root=ctx.upstream_root))
    if not shutil.which(argv[0]):
        raise Unavailable(f"compare command not found: {argv[0]}")
    base = f"http://127.0.0.1:{port}"
    auth = ctx.compare_auth
    return Mode("compare", argv, base + CHAT_PATH, base + "/v1/models", auth=lambda: auth)


register("direct", _direct)
register("direct-stream", _direct_stream)
register("compare", _compare)


@dataclass
class GatewaySetup:
    """Handed to a token factory before the gateway starts: where to put keys, the written
    config and the gateway's command line up to its subcommand (to run `keys create`)."""

    name: str
    workdir: Path
    jwks_dir: Path
    upstream_root: str
    config: Path | None = None
    cli: list[str] = field(default_factory=list)


TokenFactory = Callable[[GatewaySetup], "str | None"]


def resolve_gateway(argv: list[str]) -> list[str]:
    """The gateway command as runnable argv; `rolegate` falls back to `python -m rolegate`."""
    if shutil.which(argv[0]):
        return argv
    if argv[0] == "rolegate" and importlib.util.find_spec("rolegate") is not None:
        return [sys.executable, "-m", "rolegate", *argv[1:]]
    raise Unavailable(f"gateway not available: `{argv[0]}` is neither on PATH nor importable")


def fill(template: str, values: dict[str, str]) -> str:
    """Replace {key} for the given keys only, so YAML braces and {tenantid} stay intact."""
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template


def gateway_mode(name: str, config_yaml_text: str, token_factory: TokenFactory, *,
                 wrk_script: str = "chat.lua", baseline: str = "direct",
                 ready_path: str = "/v1/models", env: dict[str, str] | None = None,
                 draft: str | None = None, is_using_redis: bool = False,
                 path: str = CHAT_PATH, is_using_postgres: bool = False) -> ModeFactory:
    """A mode that runs --gateway-cmd with this config in front of the mock upstream.

    The config text may use {port}, {upstream} (…/v1), {upstream_root}, {workdir} and, with
    `is_using_redis` (a throw-away redis-server is started for the mode), {redis_url}; with
    `is_using_postgres` (a throw-away schema in the local PostgreSQL's `test` database, dropped
    after the mode), {postgres_url} and {postgres_schema}.
    token_factory runs once the config is written (it may write keys to setup.jwks_dir, served
    by the upstream at {upstream_root}/jwks/<file>, or create API keys with setup.cli) and
    returns the Authorization header value, or None.
    `path` is the gateway route loaded (chat completions unless the mode is about another API
    surface); the streaming probe, which speaks chat completions, runs on that route only.
    `draft` names a feature the config relies on that may not exist yet: when the gateway's
    `check` command rejects the config, the mode is skipped with that reason instead of failing.
    """
    def factory(ctx: RunContext) -> Mode:
        port = free_port()
        workdir = ctx.workroot / name.replace("/", "_").replace("+", "_")
        workdir.mkdir(parents=True, exist_ok=True)
        values = {"port": str(port), "upstream": ctx.upstream,
                  "upstream_root": ctx.upstream_root, "workdir": str(workdir)}
        services = []
        if is_using_redis:
            redis = redis_service(free_port())
            services.append(redis)
            values["redis_url"] = f"redis://127.0.0.1:{redis.port}/0"
        cleanups = []
        if is_using_postgres:
            values["postgres_schema"], drop = postgres_schema(name)
            values["postgres_url"] = POSTGRES_URL
            cleanups.append(drop)
        config = workdir / "config.yaml"
        argv = resolve_gateway(shlex.split(fill(ctx.gateway_cmd, {
            **values, "config": str(config)})))
        config.write_text(fill(config_yaml_text, values))
        if draft is not None:
            _skip_if_rejected(argv, config, draft)
        cli = argv[:argv.index("serve")] if "serve" in argv else []
        header = token_factory(GatewaySetup(name, workdir, ctx.jwks_dir, ctx.upstream_root,
                                            config, cli))
        base = f"http://127.0.0.1:{port}"
        return Mode(name, argv, base + path, base + ready_path, env=dict(env or {}),
                    wrk_script=wrk_script, auth=lambda: header, baseline=baseline,
                    stream_probe=path == CHAT_PATH, services=services, cleanups=cleanups)
    return factory


def _skip_if_rejected(serve_argv: list[str], config: Path, draft: str) -> None:
    """Run `<gateway> check CONFIG`; raise Unavailable when the config is refused."""
    try:
        at = serve_argv.index("serve")
    except ValueError:
        return  # not a rolegate command line: nothing to ask
    check = subprocess.run([*serve_argv[:at], "check", str(config)], capture_output=True,
                           text=True, timeout=60)
    if check.returncode != 0:
        problems = [line.strip() for line in (check.stdout + check.stderr).splitlines()
                    if line.strip().startswith("- ")]
        first = problems[0][2:] if problems else "config rejected"
        raise Unavailable(f"{draft} not supported by this gateway yet ({first})")
