"""Reading token usage: the upstream's `usage` object (as the relay keeps it on the reply) to
`TokenUsage`. OpenAI's names (`prompt_tokens`, `completion_tokens`) and the Responses API's
(`input_tokens`, `output_tokens`) are both understood; anything unreadable counts as zero."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rolegate.accounting.records import TokenUsage


def token_usage(usage: Mapping[str, Any] | None) -> TokenUsage:
    if not isinstance(usage, Mapping):
        return TokenUsage()
    prompt = _count(usage, "prompt_tokens", "input_tokens")
    completion = _count(usage, "completion_tokens", "output_tokens")
    total = _count(usage, "total_tokens") or prompt + completion
    return TokenUsage(prompt, completion, total)


def _count(usage: Mapping[str, Any], *names: str) -> int:
    for name in names:
        value = usage.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return 0
