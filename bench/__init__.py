"""Benchmarks: `python -m bench.store`, `python -m bench.failover` (see README)."""
