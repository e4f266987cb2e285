"""`RouteTable`: public model name -> the provider that serves it."""

from __future__ import annotations

from collections.abc import Iterable

from rolegate.errors import ModelNotFound
from rolegate.providers.base import Provider


class RouteTable:
    def __init__(self, providers: Iterable[Provider]) -> None:
        self._by_name = {provider.model.name: provider for provider in providers}

    @property
    def model_names(self) -> list[str]:
        return list(self._by_name)

    def select(self, model: str) -> Provider:
        provider = self._by_name.get(model)
        if provider is None:
            raise ModelNotFound(f"The model {model!r} does not exist.", param="model")
        return provider
