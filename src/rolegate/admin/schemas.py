"""The admin API's request and response bodies, as pydantic models.

Request bodies are validated with these (unknown fields are refused); the OpenAPI document at
`/admin/openapi.json` is generated from the same models, so the two cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rolegate.config.model import LimitConfig
from rolegate.errors import InvalidRequest

Name = Annotated[str, Field(min_length=1, max_length=200)]
Names = Annotated[list[Name], Field(max_length=100)]
B = TypeVar("B", bound=BaseModel)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeyCreate(Body):
    """A new virtual API key. Its plaintext is in the response, once."""

    name: Name = Field(description="What the key is for, e.g. the service using it.")
    owner: Name = Field(description="Who answers for it: the principal's subject.")
    roles: Names = Field(default_factory=list, description="Roles the policy sees.")
    scopes: Names = Field(default_factory=list, description="Scopes the policy sees.")
    models: Names | None = Field(None, description="Model globs the key is limited to, on top "
                                 "of the policy; null: whatever the policy grants.")
    limits: LimitConfig | None = Field(None, description="Limits counted on this key.")
    expires_at: datetime | None = Field(None, description="When the key stops working (ISO 8601).")
    expires_in_days: float | None = Field(None, gt=0, le=3650,
                                          description="Or: days from now until it expires.")

    @model_validator(mode="after")
    def _one_expiry(self) -> KeyCreate:
        if self.expires_at is not None and self.expires_in_days is not None:
            raise ValueError("give expires_at or expires_in_days, not both")
        return self


class KeyUpdate(Body):
    """Fields to change on a key; fields left out keep their value (null clears an optional)."""

    name: Name | None = None
    owner: Name | None = None
    roles: Names | None = None
    scopes: Names | None = None
    models: Names | None = None
    limits: LimitConfig | None = None
    expires_at: datetime | None = None


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
    by: Literal["principal", "client_id", "key", "end_user", "model", "day"]
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
        where = ".".join(str(part) for part in first["loc"]) or None
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown field"
        if first["type"] == "json_invalid":
            raise InvalidRequest("The request body is not valid JSON.",
                                 code="invalid_json") from None
        raise InvalidRequest(f"{where or 'body'}: {message}", code="invalid_body",
                             param=where) from None
