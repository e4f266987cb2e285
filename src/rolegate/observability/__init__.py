"""Logs (secret-free) and, later, metrics."""
