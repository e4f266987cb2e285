"""Token usage is read from the upstream's `usage` object, whichever API's names it uses."""

from __future__ import annotations

import pytest

from rolegate.accounting.records import TokenUsage
from rolegate.proxy.usage import token_usage


@pytest.mark.parametrize(("usage", "expected"), [
    ({"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}, TokenUsage(7, 5, 12)),
    ({"input_tokens": 3, "output_tokens": 4}, TokenUsage(3, 4, 7)),
    ({"prompt_tokens": 2}, TokenUsage(2, 0, 2)),
    ({"prompt_tokens": -1, "completion_tokens": True, "total_tokens": "9"}, TokenUsage(0, 0, 0)),
    (None, TokenUsage(0, 0, 0)),
    ({"input_tokens": 3, "output_tokens": 4, "cache_read_input_tokens": 5,
      "cache_creation_input_tokens": 6}, TokenUsage(14, 4, 18)),
], ids=["openai", "responses-api", "embeddings", "nonsense", "none",
        "anthropic-with-cache-reads-and-writes-in-the-prompt"])
def test_usage_is_read_in_openai_and_responses_api_names(usage, expected):
    assert token_usage(usage) == expected
