"""`TokenEstimator`: counting tokens the gateway saw itself, for replies whose upstream never
reported its usage (the caller left before the final usage event, the upstream cut the stream,
or it sends no usage at all).

The count uses a real BPE tokenizer (`bpe-openai`, OpenAI's `o200k_base` vocabulary) whose
vocabulary ships inside the package: nothing is downloaded, at start-up or ever. The package is
imported and the vocabulary loaded on first use (about 1 s and 140 MB, once per process), so a
gateway whose upstreams always report usage never pays for it. Records counted here are marked
`estimated`.

    estimator = TokenEstimator()
    usage = estimator.estimate(request_body, relayed_text)   # TokenUsage

A chat prompt is counted as OpenAI documents for its models: each message's text plus
`MESSAGE_OVERHEAD` tokens per message and `REPLY_PRIMING` for the reply. Parts that are not text
(images, audio, files) are not counted: their price depends on the upstream's own processing,
which the gateway cannot reproduce.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

from rolegate.accounting.records import TokenUsage

ENCODING = "o200k_base"
MESSAGE_OVERHEAD = 3
REPLY_PRIMING = 3
# `system`: Anthropic's; `contents`, `systemInstruction` and, to embed, `content` and a batch's
# `requests`: the Gemini API's.
_PROMPT_FIELDS = ("prompt", "input", "instructions", "system", "contents", "systemInstruction",
                  "content", "requests")


class TokenEstimator:
    """Counts tokens offline with a packaged BPE vocabulary (see the module's docstring)."""

    def __init__(self, encoding: str = ENCODING) -> None:
        self._name = encoding
        self._encoding: Any = None
        self._loading = threading.Lock()  # counts may run in several worker threads

    def count(self, text: str) -> int:
        if not text:
            return 0
        encoding = self._encoding or self._load()
        # Special-token text in a prompt is ordinary text to the upstream: count it as such.
        return len(encoding.encode(text, disallowed_special=()))

    def _load(self) -> Any:
        with self._loading:
            if self._encoding is None:
                # Imported here, not at the top: the import alone costs a second and most of
                # the memory, and most gateways never need it (see the module's docstring).
                import bpe_openai
                self._encoding = bpe_openai.get_encoding(self._name)
            return self._encoding

    def prompt_tokens(self, body: Mapping[str, Any]) -> int:
        """The prompt of a request body: chat `messages`, or `prompt` / `input` /
        `instructions` (completions, embeddings, the Responses API), or Gemini's
        `contents` and `systemInstruction` (`content` and `requests` to embed)."""
        messages = body.get("messages")
        total = 0
        if isinstance(messages, list):
            for message in messages:
                total += MESSAGE_OVERHEAD + self._count_value(message)
            total += REPLY_PRIMING
        for name in _PROMPT_FIELDS:
            if name in body:
                total += self._count_value(body[name])
        return total

    def estimate(self, body: Mapping[str, Any], completion: str) -> TokenUsage:
        prompt = self.prompt_tokens(body)
        output = self.count(completion)
        return TokenUsage(prompt, output, prompt + output)

    def _count_value(self, value: object) -> int:
        tokens = 0
        texts: list[str] = []
        for item in _texts(value):
            if isinstance(item, int):
                tokens += 1  # a prompt already given as token ids (embeddings, completions)
            else:
                texts.append(item)
        return tokens + self.count("\n".join(texts))


def _texts(value: object, depth: int = 0) -> Iterator[str | int]:
    """The text in a prompt value: strings, token ids, and the `content` / `text` of messages
    and their parts, however nested (bounded, as the body is the caller's)."""
    if depth > 8:
        return
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item, depth + 1)
    elif isinstance(value, Mapping):
        for name in ("content", "text", "input", "output", "arguments", "name", "parts"):
            if name in value:
                yield from _texts(value[name], depth + 1)
