"""Upstream APIs, one module each. No vendor name appears outside this package."""
