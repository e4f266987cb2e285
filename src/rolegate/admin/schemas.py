"""The admin API's request and response bodies, as pydantic models.

Request bodies are validated with these (strictly: no type coercion, unknown fields refused);
the OpenAPI document at `/admin/openapi.json` is generated from the same models, so every bound
is stated once. The bounds are the storage's own: string lengths are the columns' lengths
(`storage/tables.py`), counts fit JSON's exact integers, amounts are finite, and names, owners
and globs hold no control character (PostgreSQL refuses NUL in text; the others end up in logs
and terminals).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import parse_qsl

import orjson
from pydantic import (
    AfterValidator, AwareDatetime, BeforeValidator, BaseModel, ConfigDict, Field, ValidationError,
    field_validator, model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from sqlalchemy import String

from rolegate.config.model import DIMENSION_NAME, LimitConfig
from rolegate.errors import InvalidRequest
from rolegate.storage.tables import usage

# C0 and C1 control characters, DEL among them. As a JSON Schema `not: {pattern}` (a search),
# which reads the same in every regex dialect; `$` would let a trailing newline through in some.
CONTROL_CHARACTERS = "[\\x00-\\x1f\\x7f-\\x9f]"
MAX_NAME = 200       # api_keys.name and api_keys.owner are String(200)
MAX_ITEMS = 100
MAX_COUNT = 2**53 - 1  # the largest integer every JSON reader keeps exact
MAX_USD = 1e12
MAX_DAYS = 3650.0
B = TypeVar("B", bound=BaseModel)
Q = TypeVar("Q", bound=BaseModel)


def has_control_character(text: str) -> bool:
    return any(ord(char) < 0x20 or 0x7f <= ord(char) <= 0x9f for char in text)


def _printable(text: str) -> str:
    if has_control_character(text):
        raise ValueError("must not contain control characters")
    return text


def text_field(max_length: int, *, min_length: int = 1) -> Any:
    """The schema constraints of a printable string of at most `max_length` characters."""
    return Field(min_length=min_length, max_length=max_length,
                 json_schema_extra={"not": {"pattern": CONTROL_CHARACTERS}})


Name = Annotated[str, text_field(MAX_NAME), AfterValidator(_printable)]
Names = Annotated[list[Name], Field(max_length=MAX_ITEMS)]


def _whole(value: Any) -> Any:
    # JSON Schema counts 5.0 as an integer; strict pydantic would not.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Count = Annotated[int, Field(gt=0, le=MAX_COUNT), BeforeValidator(_whole)]
Expiry = Annotated[AwareDatetime, Field(description="An RFC 3339 date-time with its offset.")]


def _drop_null_defaults(schema: dict[str, Any]) -> None:
    # A field that may be left out but not sent as null has None as its Python default only;
    # the document must not advertise `null`.
    for prop in schema.get("properties", {}).values():
        if prop.get("default", ...) is None and "anyOf" not in prop:
            del prop["default"]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True,
                              json_schema_extra=_drop_null_defaults)


class KeyLimits(Body):
    """Limits counted on one key. Left out: unlimited."""

    rpm: Count | None = Field(None, description="Requests in any 60-second window.")
    tpm: Count | None = Field(None, description="Tokens per clock minute.")
    daily_tokens: Count | None = Field(None, description="Tokens per UTC day.")
    monthly_budget_usd: float | None = Field(None, gt=0, le=MAX_USD, allow_inf_nan=False,
                                             description="USD per UTC month.")
    per_end_user: bool = Field(False, description="Count each end user of the key apart.")

    def config(self) -> LimitConfig:
        return LimitConfig.model_validate(self.model_dump())


def _one_of_expiries(schema: dict[str, Any]) -> None:
    _drop_null_defaults(schema)
    schema["not"] = {"required": ["expires_at", "expires_in_days"]}


class KeyCreate(Body):
    """A new virtual API key. Its plaintext is in the response, once."""

    model_config = ConfigDict(json_schema_extra=_one_of_expiries)

    name: Name = Field(description="What the key is for, e.g. the service using it.")
    owner: Name = Field(description="Who answers for it: the principal's subject.")
    roles: Names = Field(default_factory=list, description="Roles the policy sees.")
    scopes: Names = Field(default_factory=list, description="Scopes the policy sees.")
    models: Names | None = Field(None, description="Model globs the key is limited to, on top "
                                 "of the policy; null: whatever the policy grants.")
    limits: KeyLimits | None = Field(None, description="Limits counted on this key.")
    expires_at: Expiry | None = Field(None, description="When the key stops working.")
    expires_in_days: float | None = Field(None, gt=0, le=MAX_DAYS, allow_inf_nan=False,
                                          description="Or: days from now until it expires.")

    @model_validator(mode="after")
    def _one_expiry(self) -> KeyCreate:
        if {"expires_at", "expires_in_days"} <= self.model_fields_set:
            raise ValueError("give expires_at or expires_in_days, not both")
        return self


NOT_NULL = ("name", "owner", "roles", "scopes")


class KeyUpdate(Body):
    """Fields to change on a key; fields left out keep their value. `null` clears `models`,
    `limits` and `expires_at`; the other fields cannot be null."""

    name: Name | SkipJsonSchema[None] = None
    owner: Name | SkipJsonSchema[None] = None
    roles: Names | SkipJsonSchema[None] = None
    scopes: Names | SkipJsonSchema[None] = None
    models: Names | None = None
    limits: KeyLimits | None = None
    expires_at: Expiry | None = None

    @field_validator(*NOT_NULL, mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be left out but not null")
        return value

    def changes(self) -> dict[str, Any]:
        """The fields sent, as the key store takes them."""
        changes: dict[str, Any] = {name: getattr(self, name) for name in self.model_fields_set}
        if isinstance(changes.get("expires_at"), datetime):
            changes["expires_at"] = changes["expires_at"].timestamp()
        if isinstance(changes.get("limits"), KeyLimits):
            changes["limits"] = changes["limits"].config()
        return changes


def key_changes(body: dict[str, Any]) -> dict[str, Any]:
    """`body` (as a PATCH would send it) validated as `KeyUpdate`: the changes, or
    `InvalidRequest` naming the first bad field. The console's key form is checked with it."""
    return parse_body(KeyUpdate, orjson.dumps(body)).changes()


class Query(BaseModel):
    """Query parameters, read from their text: what is not stated here is refused."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_drop_null_defaults)


class KeyQuery(Query):
    owner: Name | None = Field(None, description="Only this owner's keys.")
    include_revoked: Literal["true", "false"] = Field(
        "false", description="Also revoked keys.")


def _instant(text: str) -> str:
    if not INSTANT.fullmatch(text):
        raise ValueError("use 7d / 24h / 30m, epoch seconds, an RFC 3339 date "
                         "(2025-01-31) or date-time (2025-01-31T12:00:00Z)")
    return text


# What `accounting.period.parse_instant` reads, spelled exactly: a relative period, epoch
# seconds, an RFC 3339 full-date, or an RFC 3339 date-time (with its offset).
_LEAP_YEAR = r"(?:[1-9][0-9](?:0[48]|[2468][048]|[13579][26])|(?:[2468][048]|[13579][26])00)"
_DATE = (r"(?:[1-9][0-9]{3}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
         r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))"
         rf"|{_LEAP_YEAR}-02-29)")
INSTANT = re.compile(
    r"[0-9]{1,12}(?:\.[0-9]{1,6})?[smhdw]?"
    rf"|{_DATE}"
    rf"|{_DATE}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{{1,6}})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])")
Instant = Annotated[str, Field(json_schema_extra={"pattern": f"^(?:{INSTANT.pattern})$"}),
                    AfterValidator(_instant)]


def _length(column: str) -> int:
    kind = usage.c[column].type
    assert isinstance(kind, String) and kind.length is not None
    return kind.length


IssuerFilter = Annotated[str, text_field(_length("issuer")), AfterValidator(_printable)]
SubjectFilter = Annotated[str, text_field(_length("subject")), AfterValidator(_printable)]
ClientFilter = Annotated[str, text_field(_length("client_id")), AfterValidator(_printable)]
KeyFilter = Annotated[str, text_field(_length("key_id")), AfterValidator(_printable)]
EndUserFilter = Annotated[str, text_field(_length("end_user")), AfterValidator(_printable)]
ModelFilter = Annotated[str, text_field(_length("model")), AfterValidator(_printable)]


Grouping = Annotated[str, Field(pattern=f"^{DIMENSION_NAME.pattern}$")]


class UsageParams(Query):
    by: Grouping = Field("principal", description="Grouping: principal, client_id, key, "
                         "end_user, model, day, or a name in `accounting.dimensions`.")
    since: Instant | None = Field(None, description="Start: 7d, 24h, 30m ago, an RFC 3339 "
                                  "date or date-time, or epoch seconds.")
    until: Instant | None = Field(None, description="End (exclusive), in the same forms.")
    issuer: IssuerFilter | None = Field(None, description="Only this issuer's rows.")
    subject: SubjectFilter | None = Field(None, description="Only this subject's rows.")
    client_id: ClientFilter | None = Field(None, description="Only this client's rows.")
    key_id: KeyFilter | None = Field(None, description="Only this key's rows.")
    end_user: EndUserFilter | None = Field(None, description="Only this end user's rows.")
    model: ModelFilter | None = Field(None, description="Only this model's rows.")


def read_params(model: type[Q], query_string: bytes) -> Q:
    """The query parameters `model` states (the first of each, percent-decoded as UTF-8), or
    `InvalidRequest` (400) naming the first bad one. An empty value is a value (`owner=`)."""
    try:
        pairs = parse_qsl(query_string.decode(), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise InvalidRequest("The query string is not UTF-8.", code="invalid_query") from None
    values: dict[str, str] = {}
    for name, value in pairs:
        if name in model.model_fields:
            values.setdefault(name, value)
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"] if _is_place(part)) or None
        message = first["msg"].removeprefix("Value error, ")
        raise InvalidRequest(f"{where}: {message}", code="invalid_query", param=where) from None


def read_key_query(query_string: bytes) -> KeyQuery:
    return read_params(KeyQuery, query_string)

class KeyView(BaseModel):
    """A stored key: never its plaintext nor its hash. Times are epoch seconds."""

    id: str
    hint: str = Field(description="`rg-...` and the key's last four characters.")
    name: str
    owner: str
    roles: list[str]
    scopes: list[str]
    models: list[str] | None
    limits: LimitConfig | None
    expires_at: float | None
    created_at: float
    last_used_at: float | None
    revoked_at: float | None


class KeyCreated(KeyView):
    key: str = Field(description="The key itself. It is shown only in this response.")


class KeyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[KeyView]


class UsageRow(BaseModel):
    """Totals of one group. Only the grouping's own fields are present."""

    issuer: str | None = None
    subject: str | None = None
    client_id: str | None = None
    key_id: str | None = None
    end_user: str | None = None
    model: str | None = None
    day: str | None = None
    value: str | None = Field(None, description="Grouped by a dimension: its value (null: "
                              "records without one). A record counts under each of its values.")
    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float
    estimated_requests: int = Field(0, description="Requests whose tokens the gateway counted "
                                    "itself: the upstream's usage never came (a stream "
                                    "abandoned or cut).")


class UsageReport(BaseModel):
    object: Literal["usage_report"] = "usage_report"
    by: str
    since: float | None
    until: float | None
    data: list[UsageRow]


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(BaseModel):
    """Every error, OpenAI-shaped."""

    error: ErrorDetail


def parse_body(model: type[B], raw: bytes) -> B:
    """The request body as `model`, or `InvalidRequest` (400) naming the first bad field."""
    if not raw.strip():
        raise InvalidRequest("The request body is empty; send a JSON object.",
                             code="invalid_body")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"] if _is_place(part)) or None
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown field"
        if first["type"] == "json_invalid":
            raise InvalidRequest("The request body is not valid JSON.",
                                 code="invalid_json") from None
        raise InvalidRequest(f"{where or 'body'}: {message}", code="invalid_body",
                             param=where) from None


def _is_place(part: str | int) -> bool:
    """A field name or list index in an error's location; not the tag of a union's branch
    (`function-after[...]`, `list[...]`)."""
    return isinstance(part, int) or part.isidentifier()
