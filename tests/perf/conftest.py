"""Benchmarks run only with `make bench` (pytest -m perf)."""
