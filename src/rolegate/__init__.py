"""rolegate: an OpenAI-compatible LLM gateway with strict JWT authentication and a deny-by-default
policy."""

__version__ = "0.1.0"
