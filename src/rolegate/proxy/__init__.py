"""The OpenAI-compatible surface: which path is which operation, and the handlers behind them."""
