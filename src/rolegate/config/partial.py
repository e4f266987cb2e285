"""`partial_settings`: what of an invalid configuration is valid, so that the cross-reference
checks still run and every problem is reported in one pass.

Each field is kept when it validates on its own; a nested object is salvaged the same way,
a required field that is missing or invalid gets an empty stand-in (a name: ""), and so does
a list item that is no object at all, so every item keeps its index for the messages. The
result skips the model-level checks, so it serves only to find more problems, never to serve.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError

from rolegate.config.model import Settings

M = TypeVar("M", bound=BaseModel)


def partial_settings(data: dict[str, Any]) -> Settings:
    salvaged = _salvage(Settings, data)
    return salvaged if salvaged is not None else Settings()


def _salvage(cls: type[M], raw: Any) -> M | None:
    try:
        return cls.model_validate(raw)
    except ValidationError:
        pass
    if not isinstance(raw, dict):
        return None
    values: dict[str, Any] = {}
    for name, field in cls.model_fields.items():
        key = field.alias or name
        if key in raw:
            is_valid, value = _field_value(field.annotation, field.metadata, raw[key])
            if is_valid:
                values[name] = value
    for name, field in cls.model_fields.items():
        if field.is_required() and name not in values:
            values[name] = _neutral(field.annotation)
    return cls.model_construct(**values)


def _neutral(annotation: Any) -> Any:
    """A stand-in for a missing or invalid required field, so the object can still be read."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _salvage(annotation, {})
    if get_origin(annotation) is tuple:
        return ()
    if annotation is str:
        return ""
    return None


def _field_value(annotation: Any, metadata: list[Any], raw: Any) -> tuple[bool, Any]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        value = _salvage(annotation, raw)
        return value is not None, value
    item = _model_items(annotation)
    if item is not None:
        if not isinstance(raw, list):
            return False, None
        return True, tuple(_salvage(item, element) or _salvage(item, {}) for element in raw)
    typed: Any = Annotated[annotation, *metadata] if metadata else annotation
    try:
        return True, TypeAdapter(typed).validate_python(raw)
    except ValidationError:
        return False, None


def _model_items(annotation: Any) -> type[BaseModel] | None:
    """`ModelConfig` for `tuple[ModelConfig, ...]`; None for anything else."""
    if get_origin(annotation) is not tuple:
        return None
    args = get_args(annotation)
    if len(args) == 2 and args[1] is Ellipsis and isinstance(args[0], type) \
            and issubclass(args[0], BaseModel):
        return args[0]
    return None
