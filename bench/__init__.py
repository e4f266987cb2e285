"""Benchmark harness: a mock upstream, wrk scripts and a runner (`python -m bench`)."""
