"""The refusal every translator raises for a field the other API cannot carry."""

from __future__ import annotations

from rolegate.errors import InvalidRequest


def untranslatable(field: str, target: str, why: str = "") -> InvalidRequest:
    """A 400 naming `field`: the model's deployment speaks `target`, which has no equivalent."""
    detail = f" ({why})" if why else ""
    return InvalidRequest(f"`{field}` cannot be translated for a deployment that speaks the "
                          f"{target} API{detail}.", code="untranslatable_field", param=field)
