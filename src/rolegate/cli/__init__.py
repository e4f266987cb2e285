"""The `rolegate` command line: serve | check | dev-token | explain | keys | usage | db."""

from rolegate.cli.commands import cli, main

__all__ = ["cli", "main"]
