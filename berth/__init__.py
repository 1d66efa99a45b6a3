"""What the master, the agent, the CLI and the lab share: the only package all of them import.

It holds no server and no client logic: quantities, settings files, and the contract of
Berth's containers on a host (their names, labels and event stream). The agent imports
from here and never from `master` (tests/test_boundaries.py keeps that true).
"""
