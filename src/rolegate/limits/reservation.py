"""`Reserver`: what a request reserves on its token and cost counters before it is forwarded.

Token and cost limits can only count a reply's real usage once it has ended, so without a
reservation any number of requests running at once would all be admitted against the same unspent
budget. Each request therefore reserves, at admission, what it may use: its prompt (estimated as
a quarter of the JSON body's bytes: nothing is tokenized on the request path) plus the output it
allows itself (`max_tokens`, `max_completion_tokens` or `max_output_tokens`, times `n`), or
`limits.default_reservation_tokens` when it names none; the cost is those tokens at the model's
prices. Settling replaces the reservation with the real usage (`limiter.settle`).

    reserver = Reserver(settings.models, default_tokens=1024)
    reservation = reserver.reservation(quotas, "chat/completions", body, len(raw), "gpt-4o")
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeGuard

from rolegate.accounting.pricing import cost_of_tokens
from rolegate.config.model import ModelConfig
from rolegate.limits.limiter import NO_RESERVATION, Reservation
from rolegate.limits.quota import Quota

BYTES_PER_TOKEN = 4
MAX_CHOICES = 128
_OUTPUT_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
_TEXT_OPERATIONS = frozenset({"chat/completions", "completions", "responses", "messages",
                              "generateContent"})


class Reserver:
    def __init__(self, models: Iterable[ModelConfig], *, default_tokens: int) -> None:
        self._models = {model.name: model for model in models}
        self._default_tokens = default_tokens

    def reservation(self, quotas: Sequence[Quota], operation: str, body: Mapping[str, Any],
                    prompt_bytes: int, model: str) -> Reservation:
        """NO_RESERVATION when no quota counts tokens or cost (the common case costs nothing)."""
        for quota in quotas:
            if quota.kind != "requests":
                break
        else:
            return NO_RESERVATION
        prompt = prompt_bytes // BYTES_PER_TOKEN
        output = self._output_tokens(operation, body)
        config = self._models.get(model)
        cost = cost_of_tokens(config, prompt, output) if config is not None else 0.0
        return Reservation(float(prompt + output), cost)  # (tokens, cost)

    def _output_tokens(self, operation: str, body: Mapping[str, Any]) -> int:
        if operation not in _TEXT_OPERATIONS:
            return 0
        stated: object = None
        config = body.get("generationConfig")  # Gemini's names, one level down
        if config is not None and isinstance(config, Mapping):  # (an ABC's check: not for None)
            stated, choices = config.get("maxOutputTokens"), config.get("candidateCount")
        else:
            for name in _OUTPUT_FIELDS:
                value = body.get(name)
                if value is not None and _is_count(value):  # most bodies name none of them
                    stated = value
                    break
            choices = body.get("n")
        output = stated if stated is not None and _is_count(stated) else self._default_tokens
        if choices is None:
            return output
        return (min(choices, MAX_CHOICES) if _is_count(choices) else 1) * output


def _is_count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
