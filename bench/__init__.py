"""Benchmarks: `python bench/store.py`, `python bench/failover.py` (see README)."""
