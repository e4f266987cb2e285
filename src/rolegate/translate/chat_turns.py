"""Reading an OpenAI chat request's messages, for every translation from it (to Anthropic
Messages, to Bedrock Converse): lists and text parts checked as they are read, and turns of one
role merged, as both targets want them alternating."""

from __future__ import annotations

from typing import Any

from rolegate.translate.untranslatable import untranslatable


def listed(value: Any, field: str, target: str) -> list[Any]:
    """`value`, which must be a list, or a 400 naming `field`."""
    if not isinstance(value, list):
        raise untranslatable(field, target, "expected a list")
    return value


def text_of(content: Any, field: str, target: str) -> str:
    """A message's content as one text: a string, or text parts joined by newlines."""
    if isinstance(content, str):
        return content
    parts = []
    for index, part in enumerate(listed(content, field, target)):
        if not isinstance(part, dict) or part.get("type") != "text":
            raise untranslatable(f"{field}[{index}]", target, "only text parts")
        parts.append(str(part.get("text", "")))
    return "\n".join(parts)


def append_turn(messages: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Consecutive turns of one role are merged (the tool results of one assistant turn go
    back in one user turn)."""
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"] += blocks
    else:
        messages.append({"role": role, "content": blocks})
