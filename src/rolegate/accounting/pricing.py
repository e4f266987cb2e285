"""The cost of a request from its tokens and the model's configured prices."""

from __future__ import annotations

from rolegate.accounting.records import TokenUsage
from rolegate.config.model import ModelConfig


def cost_usd(model: ModelConfig, usage: TokenUsage) -> float:
    return cost_of_tokens(model, usage.prompt_tokens, usage.completion_tokens)


def cost_of_tokens(model: ModelConfig, prompt_tokens: int, completion_tokens: int) -> float:
    return (prompt_tokens * model.input_cost_per_1k
            + completion_tokens * model.output_cost_per_1k) / 1000.0
