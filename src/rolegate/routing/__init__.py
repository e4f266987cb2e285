"""Routing: which upstream serves a public model name."""
