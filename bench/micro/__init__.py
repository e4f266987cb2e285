"""Micro-benchmarks of the per-request steps (pytest-benchmark): `./dev pytest bench/micro`."""
