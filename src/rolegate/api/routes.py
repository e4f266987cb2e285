"""The route table: every method and path the gateway answers, the route group the policy grants
for it, and the operation that serves it. One table, read three ways: `resolve` looks a request
up in it, the front door (`server/gateway.py`) authorizes the declared group before dispatching,
and the tests walk it route by route.

>>> route = resolve("POST", "/openai/deployments/gpt-4o/chat/completions")
>>> (route.group, route.operation, route.model)
(<RouteGroup.INFERENCE: 'inference'>, <Operation.CHAT_COMPLETIONS: 'chat/completions'>, 'gpt-4o')

Paths are matched exactly after rejecting empty or dot segments, so `/v1//chat/completions` and
`/v1/./models` are not found rather than treated as something else. A template names at most one
parameter: `{model}` (at the end of a path it may hold `/`, as model names do), `{key_id}` or
`{server}` (one segment) or `{rest}` (anything, for the admin paths that answer 404 to an
authorized caller). The Gemini API's `/v1beta/models/{model}:generateContent` names the method
after a colon: its model holds neither `/` nor `:`, and the method is matched exactly (case
too), so `a:generateContent:streamGenerateContent` is not found rather than read two ways.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from rolegate.errors import MethodNotAllowed, NotFound


class RouteGroup(StrEnum):
    """What a policy rule's `allow.routes` grants (besides path globs)."""

    INFERENCE = "inference"
    INFO = "info"
    ADMIN = "admin"
    MCP = "mcp"
    CONSOLE = "console"


class Surface(StrEnum):
    """The API a caller speaks, which decides only the shape of the errors it is shown."""

    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"


class Operation(StrEnum):
    """What a route does; the key of the gateway's handler table. Inference operations are
    named as the OpenAI API names them (the upstream path)."""

    CHAT_COMPLETIONS = "chat/completions"
    COMPLETIONS = "completions"
    EMBEDDINGS = "embeddings"
    RESPONSES = "responses"
    AUDIO_SPEECH = "audio/speech"
    AUDIO_TRANSCRIPTIONS = "audio/transcriptions"
    AUDIO_TRANSLATIONS = "audio/translations"
    IMAGES_GENERATIONS = "images/generations"
    IMAGES_EDITS = "images/edits"
    IMAGES_VARIATIONS = "images/variations"
    MESSAGES = "messages"  # the Anthropic Messages API (its path too: /v1/messages)
    MESSAGES_COUNT_TOKENS = "messages/count_tokens"
    # The Gemini API's methods (its path: /v1beta/models/{model}:<method>)
    GENERATE_CONTENT = "generateContent"
    STREAM_GENERATE_CONTENT = "streamGenerateContent"
    COUNT_TOKENS = "countTokens"
    EMBED_CONTENT = "embedContent"
    BATCH_EMBED_CONTENTS = "batchEmbedContents"
    GEMINI_MODELS_LIST = "gemini.models.list"
    GEMINI_MODELS_GET = "gemini.models.get"
    MODELS_LIST = "models.list"
    MODELS_GET = "models.get"
    ADMIN_POLICY = "admin.policy"
    ADMIN_OPENAPI = "admin.openapi"
    ADMIN_USAGE = "admin.usage"
    ADMIN_METRICS = "admin.metrics"
    ADMIN_KEYS_LIST = "admin.keys.list"
    ADMIN_KEYS_CREATE = "admin.keys.create"
    ADMIN_KEYS_GET = "admin.keys.get"
    ADMIN_KEYS_UPDATE = "admin.keys.update"
    ADMIN_KEYS_REVOKE = "admin.keys.revoke"
    ADMIN_UNKNOWN = "admin.unknown"
    MCP = "mcp.request"  # a JSON-RPC message to the MCP server `/mcp/{server}` names
    CONSOLE_HOME = "console.home"
    CONSOLE_KEYS = "console.keys"
    CONSOLE_KEYS_CREATE = "console.keys.create"
    CONSOLE_KEYS_EDIT = "console.keys.edit"
    CONSOLE_KEYS_UPDATE = "console.keys.update"
    CONSOLE_KEYS_REVOKE = "console.keys.revoke"
    CONSOLE_EXPLAIN = "console.explain"
    CONSOLE_DECISIONS = "console.decisions"
    CONSOLE_USAGE = "console.usage"
    CONSOLE_USAGE_CSV = "console.usage.csv"
    CONSOLE_POLICY = "console.policy"
    CONSOLE_SIGN_OUT = "console.sign_out"


INFERENCE_OPERATIONS = tuple(op for op in Operation if "." not in op)
FORM_OPERATIONS = (Operation.AUDIO_TRANSCRIPTIONS, Operation.AUDIO_TRANSLATIONS,
                   Operation.IMAGES_EDITS, Operation.IMAGES_VARIATIONS)  # multipart/form-data
AZURE_OPERATIONS = (Operation.CHAT_COMPLETIONS, Operation.COMPLETIONS, Operation.EMBEDDINGS,
                    Operation.AUDIO_SPEECH, Operation.AUDIO_TRANSCRIPTIONS,
                    Operation.AUDIO_TRANSLATIONS, Operation.IMAGES_GENERATIONS)
# Operations of the Anthropic API: errors on their paths are rendered in its shape.
ANTHROPIC_OPERATIONS = (Operation.MESSAGES, Operation.MESSAGES_COUNT_TOKENS)
# Methods of the Gemini API, on its own paths only (GEMINI_PREFIX); errors there are in its shape.
GEMINI_OPERATIONS = (Operation.GENERATE_CONTENT, Operation.STREAM_GENERATE_CONTENT,
                     Operation.COUNT_TOKENS, Operation.EMBED_CONTENT,
                     Operation.BATCH_EMBED_CONTENTS)
GEMINI_PREFIX = "/v1beta/"
# Routes whose handler adds a per-model decision to the group's: the model is in the body or
# the path, and only that decision is logged when the group is granted.
MODEL_OPERATIONS = frozenset({*INFERENCE_OPERATIONS, Operation.MODELS_GET})

# Answered before authentication, by the gateway itself; nothing else is. The metrics path,
# when public, is configured (`server.metrics.path`) and checked not to shadow a route.
HEALTH_LIVE = "/health/live"
HEALTH_READY = "/health/ready"
DEV_JWKS = "/dev/jwks.json"
DEV_AUTHORIZE = "/dev/authorize"  # the development issuer's sign-in page (console only)
CONSOLE = "/console"  # where the console is by default (`console.path`)


@dataclass(frozen=True, slots=True)
class ConsolePaths:
    """The console's public paths under its prefix: sign-in starts and ends before a session
    exists, and the stylesheet and script are the same for everyone."""

    home: str
    sign_in: str
    callback: str
    style: str
    script: str

    @classmethod
    def at(cls, prefix: str) -> ConsolePaths:
        return cls(prefix, f"{prefix}/login", f"{prefix}/callback", f"{prefix}/console.css",
                   f"{prefix}/console.js")

    @property
    def public(self) -> tuple[str, ...]:
        return (self.sign_in, self.callback, self.style, self.script)


MCP_PREFIX = "/mcp/"
# RFC 9728 Protected Resource Metadata of `/mcp/{server}`: public, one exact path per server.
PROTECTED_RESOURCE_PREFIX = "/.well-known/oauth-protected-resource"

ANY_METHOD = "*"


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """One line of the route table."""

    method: str  # or ANY_METHOD
    path: str    # exact, or a template with one `{…}` parameter
    group: RouteGroup
    operation: Operation


@dataclass(frozen=True, slots=True)
class Route:
    """A request resolved: its group, operation and method, and the parameter its path named."""

    group: RouteGroup
    operation: Operation
    method: str
    model: str | None = None
    resource: str | None = None  # the id a path names (`/admin/keys/{key_id}`, `{server}`)


def _table(console_path: str = CONSOLE) -> tuple[RouteSpec, ...]:
    return (*_api_table(), *_console_table(console_path))


def _api_table() -> list[RouteSpec]:
    specs = []
    for prefix in ("/v1/", "/"):
        specs += [RouteSpec("POST", prefix + op, RouteGroup.INFERENCE, op)
                  for op in INFERENCE_OPERATIONS if op not in GEMINI_OPERATIONS]
        specs.append(RouteSpec("GET", prefix + "models", RouteGroup.INFO, Operation.MODELS_LIST))
        specs.append(RouteSpec("GET", prefix + "models/{model}", RouteGroup.INFO,
                               Operation.MODELS_GET))
    specs += [RouteSpec("POST", f"/openai/deployments/{{model}}/{op}", RouteGroup.INFERENCE, op)
              for op in AZURE_OPERATIONS]
    specs += [RouteSpec("POST", f"{GEMINI_PREFIX}models/{{model}}:{op}", RouteGroup.INFERENCE, op)
              for op in GEMINI_OPERATIONS]
    specs.append(RouteSpec("GET", f"{GEMINI_PREFIX}models", RouteGroup.INFO,
                           Operation.GEMINI_MODELS_LIST))
    specs.append(RouteSpec("GET", f"{GEMINI_PREFIX}models/{{model}}", RouteGroup.INFO,
                           Operation.GEMINI_MODELS_GET))
    admin = RouteGroup.ADMIN
    specs += [
        RouteSpec("GET", "/admin/policy", admin, Operation.ADMIN_POLICY),
        RouteSpec("GET", "/admin/openapi.json", admin, Operation.ADMIN_OPENAPI),
        RouteSpec("GET", "/admin/usage", admin, Operation.ADMIN_USAGE),
        RouteSpec("GET", "/admin/metrics", admin, Operation.ADMIN_METRICS),
        RouteSpec("GET", "/admin/keys", admin, Operation.ADMIN_KEYS_LIST),
        RouteSpec("POST", "/admin/keys", admin, Operation.ADMIN_KEYS_CREATE),
        RouteSpec("GET", "/admin/keys/{key_id}", admin, Operation.ADMIN_KEYS_GET),
        RouteSpec("PATCH", "/admin/keys/{key_id}", admin, Operation.ADMIN_KEYS_UPDATE),
        RouteSpec("DELETE", "/admin/keys/{key_id}", admin, Operation.ADMIN_KEYS_REVOKE),
        # Last: any other admin path is found, and answers 404 only after the caller is
        # authorized for route group `admin`, so the admin surface cannot be probed.
        RouteSpec(ANY_METHOD, "/admin/{rest}", admin, Operation.ADMIN_UNKNOWN),
        RouteSpec(ANY_METHOD, MCP_PREFIX + "{server}", RouteGroup.MCP, Operation.MCP),
    ]
    return specs


def taken_segments() -> frozenset[str]:
    """The first path segments of every route and public path but the console's: the
    console's own path may not begin with one, or it would shadow them or they it."""
    paths = [spec.path for spec in _api_table()]
    paths += [HEALTH_LIVE, DEV_JWKS, PROTECTED_RESOURCE_PREFIX]
    return frozenset(path.split("/")[1] for path in paths)


def _console_table(prefix: str) -> list[RouteSpec]:
    """The console's pages: group `console`; what changes anything is group `admin`."""
    console, admin = RouteGroup.CONSOLE, RouteGroup.ADMIN
    return [
        RouteSpec("GET", prefix, console, Operation.CONSOLE_HOME),
        RouteSpec("GET", f"{prefix}/keys", console, Operation.CONSOLE_KEYS),
        RouteSpec("POST", f"{prefix}/keys", admin, Operation.CONSOLE_KEYS_CREATE),
        RouteSpec("GET", f"{prefix}/keys/{{key_id}}", console, Operation.CONSOLE_KEYS_EDIT),
        RouteSpec("POST", f"{prefix}/keys/{{key_id}}", admin, Operation.CONSOLE_KEYS_UPDATE),
        RouteSpec("POST", f"{prefix}/keys/{{key_id}}/revoke", admin,
                  Operation.CONSOLE_KEYS_REVOKE),
        RouteSpec("GET", f"{prefix}/explain", console, Operation.CONSOLE_EXPLAIN),
        RouteSpec("POST", f"{prefix}/explain", console, Operation.CONSOLE_EXPLAIN),
        RouteSpec("GET", f"{prefix}/decisions", console, Operation.CONSOLE_DECISIONS),
        RouteSpec("GET", f"{prefix}/usage", console, Operation.CONSOLE_USAGE),
        RouteSpec("GET", f"{prefix}/usage.csv", console, Operation.CONSOLE_USAGE_CSV),
        RouteSpec("GET", f"{prefix}/policy", console, Operation.CONSOLE_POLICY),
        RouteSpec("POST", f"{prefix}/logout", console, Operation.CONSOLE_SIGN_OUT),
    ]


ROUTES = _table()  # with the console at its default path
_ANTHROPIC_PATHS = frozenset(spec.path for spec in ROUTES
                             if spec.operation in ANTHROPIC_OPERATIONS)
# Under an Anthropic route's path (`/v1/messages/batches`) a client of that API is calling too:
# its 404 or 405 is in that API's shape.
_ANTHROPIC_PREFIXES = tuple(f"{path}/" for path in sorted(_ANTHROPIC_PATHS))


def surface_of(path: str) -> Surface:
    """The API whose error shape a request on `path` is answered in: known before the caller
    is authenticated, so a 401 is already in the shape its client reads."""
    if path.startswith(GEMINI_PREFIX):
        return Surface.GEMINI
    if path in _ANTHROPIC_PATHS or path.startswith(_ANTHROPIC_PREFIXES):
        return Surface.ANTHROPIC
    return Surface.OPENAI


@dataclass(frozen=True, slots=True)
class _Template:
    """A path with one parameter, and the routes (by method) it leads to."""

    prefix: str
    suffix: str
    parameter: str
    methods: dict[str, RouteSpec]

    def match(self, path: str) -> str | None:
        if (len(path) < len(self.prefix) + len(self.suffix) or not path.startswith(self.prefix)
                or not path.endswith(self.suffix)):
            return None
        value = path[len(self.prefix):len(path) - len(self.suffix)]
        if self.parameter == "rest":
            return value
        if not value or ("/" in value and (self.suffix or self.parameter != "model"
                                           or self.prefix.startswith(GEMINI_PREFIX))):
            return None
        if ":" in value and (self.suffix.startswith(":") or self.prefix.startswith(GEMINI_PREFIX)):
            return None  # a Gemini model holds no colon: `{model}:method` has one, the last
        return value


def _compile(specs: tuple[RouteSpec, ...]) -> tuple[dict[str, dict[str, Route]],
                                                    list[_Template]]:
    exact: dict[str, dict[str, Route]] = {}
    templates: dict[str, _Template] = {}
    for spec in specs:
        if "{" not in spec.path:
            exact.setdefault(spec.path, {})[spec.method] = Route(spec.group, spec.operation,
                                                                  spec.method)
            continue
        prefix, _, rest = spec.path.partition("{")
        parameter, _, suffix = rest.partition("}")
        template = templates.setdefault(spec.path, _Template(prefix, suffix, parameter, {}))
        template.methods[spec.method] = spec
    return exact, list(templates.values())


def _by_first_segment(templates: list[_Template]) -> dict[str, tuple[_Template, ...]]:
    """The templates by the first segment of their path, in table order: a path is tried only
    against those naming its own first segment (each template's prefix names one whole)."""
    grouped: dict[str, list[_Template]] = {}
    for template in templates:
        segments = template.prefix.split("/")
        if len(segments) < 3 or segments[0] or not segments[1]:
            raise ValueError(f"route template {template.prefix!r}: its prefix must name a "
                             "whole first segment, `/segment/...`")
        grouped.setdefault(segments[1], []).append(template)
    return {segment: tuple(group) for segment, group in grouped.items()}


MAX_RESOLVED = 1024  # templated paths remembered by a Router


class Router:
    """The route table compiled for lookups, with the console at `console_path`.

    >>> Router("/ui").resolve("GET", "/ui/keys").operation
    <Operation.CONSOLE_KEYS: 'console.keys'>
    """

    def __init__(self, console_path: str = CONSOLE) -> None:
        self.specs = _table(console_path)
        self._exact, templates = _compile(self.specs)
        self._templates = _by_first_segment(templates)
        # Templated paths resolved before (a model's Gemini calls): one lookup, not a match.
        self._resolved: dict[tuple[str, str], Route] = {}

    def resolve(self, method: str, path: str) -> Route:
        """The route for `method` and `path`: `NotFound` (404) when no path matches,
        `MethodNotAllowed` (405) when the path does but not with this method."""
        methods = self._exact.get(path)
        if methods is not None:
            route = methods.get(method)
            if route is None:
                raise _not_allowed(method, path, methods)
            return route
        # A `.` or `..` segment follows a `/`: only then are the segments read one by one.
        if "//" in path or ("/." in path
                            and any(part in (".", "..") for part in path.split("/"))):
            raise NotFound(f"No route matches {path}.", code="unknown_route")
        route = self._resolved.get((method, path))
        if route is None:
            route = self._resolve_template(method, path)
            if len(self._resolved) >= MAX_RESOLVED:  # bounded, whatever paths callers invent
                self._resolved.clear()
            self._resolved[method, path] = route
        return route

    def _resolve_template(self, method: str, path: str) -> Route:
        end = path.find("/", 1)
        for template in self._templates.get(path[1:end] if end > 0 else "", ()):
            value = template.match(path)
            if value is None:
                continue
            spec = template.methods.get(method) or template.methods.get(ANY_METHOD)
            if spec is None:
                raise _not_allowed(method, path, template.methods)
            return Route(spec.group, spec.operation, method,
                         model=value if template.parameter == "model" else None,
                         resource=value if template.parameter in ("key_id", "server") else None)
        raise NotFound(f"No route matches {path}.", code="unknown_route")


DEFAULT_ROUTER = Router()


def resolve(method: str, path: str) -> Route:
    """`Router.resolve` of the table with the console at its default path."""
    return DEFAULT_ROUTER.resolve(method, path)


def _not_allowed(method: str, path: str, methods: Iterable[str]) -> MethodNotAllowed:
    allowed = tuple(methods)
    return MethodNotAllowed(f"{method} is not allowed on {path}; use {', '.join(allowed)}.",
                            allow=allowed)
