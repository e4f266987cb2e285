"""Resolving a request's method and path to a `Route`: its route group, operation and, for paths
that name one, its model.

Paths are matched exactly after rejecting empty or dot segments, so `/v1//chat/completions` and
`/v1/./models` are not found rather than treated as something else. Route groups (`inference`,
`info`, `admin`) are what the policy grants.
"""

from __future__ import annotations

from dataclasses import dataclass

from rolegate.errors import MethodNotAllowed, NotFound

INFERENCE_OPERATIONS = ("chat/completions", "completions", "embeddings", "responses",
                        "audio/speech", "audio/transcriptions", "audio/translations",
                        "images/generations", "images/edits", "images/variations")
FORM_OPERATIONS = ("audio/transcriptions", "audio/translations", "images/edits",
                   "images/variations")  # these take multipart/form-data, model in a form field
AZURE_OPERATIONS = ("chat/completions", "completions", "embeddings", "audio/speech",
                    "audio/transcriptions", "audio/translations", "images/generations")
_AZURE_PREFIX = "/openai/deployments/"


@dataclass(frozen=True, slots=True)
class Route:
    group: str
    operation: str
    method: str
    model: str | None = None
    resource: str | None = None  # the id an admin path names (`/admin/keys/{id}`)


_EXACT: dict[str, Route] = {}
for _operation in INFERENCE_OPERATIONS:
    for _prefix in ("/v1/", "/"):
        _EXACT[_prefix + _operation] = Route("inference", _operation, "POST")
for _prefix in ("/v1/", "/"):
    _EXACT[_prefix + "models"] = Route("info", "models.list", "GET")
_EXACT["/admin/policy"] = Route("admin", "admin.policy", "GET")
_EXACT["/admin/openapi.json"] = Route("admin", "admin.openapi", "GET")
_EXACT["/admin/usage"] = Route("admin", "admin.usage", "GET")
_EXACT["/admin/metrics"] = Route("admin", "admin.metrics", "GET")
# Admin paths that take several methods: path -> method -> operation.
_ADMIN_KEYS = {"GET": "admin.keys.list", "POST": "admin.keys.create"}
_ADMIN_KEY = {"GET": "admin.keys.get", "PATCH": "admin.keys.update",
              "DELETE": "admin.keys.revoke"}


def resolve(method: str, path: str) -> Route:
    route = _EXACT.get(path) or _resolve_pattern(method, path)
    if route.method != method:
        raise MethodNotAllowed(f"{method} is not allowed on {path}; use {route.method}.",
                               allow=(route.method,))
    return route


def _resolve_pattern(method: str, path: str) -> Route:
    if "//" in path or any(part in (".", "..") for part in path.split("/")):
        raise NotFound(f"No route matches {path}.", code="unknown_route")
    for prefix in ("/v1/models/", "/models/"):
        if path.startswith(prefix) and len(path) > len(prefix):
            return Route("info", "models.get", "GET", model=path[len(prefix):])
    if path.startswith(_AZURE_PREFIX):
        name, _, operation = path[len(_AZURE_PREFIX):].partition("/")
        if name and operation in AZURE_OPERATIONS:
            return Route("inference", operation, "POST", model=name)
    if path.startswith("/admin/"):
        return _resolve_admin(method, path)
    raise NotFound(f"No route matches {path}.", code="unknown_route")


def _resolve_admin(method: str, path: str) -> Route:
    """`/admin/keys` and `/admin/keys/{id}`; any other admin path is `admin.unknown`, which
    answers 404 only after the caller is authorized for route group `admin`."""
    rest = path[len("/admin/"):]
    if rest == "keys":
        methods, key_id = _ADMIN_KEYS, None
    elif rest.startswith("keys/") and "/" not in rest[len("keys/"):] and len(rest) > len("keys/"):
        methods, key_id = _ADMIN_KEY, rest[len("keys/"):]
    else:
        return Route("admin", "admin.unknown", method)
    operation = methods.get(method)
    if operation is None:
        raise MethodNotAllowed(f"{method} is not allowed on {path}; use "
                               f"{', '.join(methods)}.", allow=tuple(methods))
    return Route("admin", operation, method, resource=key_id)
