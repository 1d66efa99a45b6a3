"""`berth lab up` time for 3 and 6 hosts: hosts made, playbook run, every node Ready.

    python -m bench.lab_up            # 3 and 6 hosts
    python -m bench.lab_up --hosts 3  # one size

Each size runs in its own lab (name `bu3`, `bu6`), removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `lab` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import add_lab_option
from berth.lab import deploy, hosts
from berth.lab.hosts import Lab


def measure(count: int, prefix: str) -> dict[str, float]:
    lab = Lab(name=f"{prefix}{count}", hosts=count)
    hosts.down(lab)
    try:
        start = time.monotonic()
        hosts.up(lab)
        made = time.monotonic()
        deploy.run_playbook(lab)
        deployed = time.monotonic()
        deploy.wait_nodes_ready(lab)
        ready = time.monotonic()
        again = time.monotonic()
        deploy.run_playbook(lab)
        rerun = time.monotonic() - again
    finally:
        hosts.down(lab)
    return {"hosts": made - start, "playbook": deployed - made, "ready": ready - deployed,
            "total": ready - start, "rerun": rerun}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, action="append", help="host count (repeatable)")
    add_lab_option(parser, "bu")  # each count's lab is named after it: bu3, bu6
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("the lab needs root")
    counts = args.hosts or [3, 6]
    print(f"berth bench/lab_up.py; python {sys.version.split()[0]}; {os.cpu_count()} cores; "
          f"load average {os.getloadavg()[0]:.2f} at start")
    print(f"  {'hosts':>5} {'make hosts s':>12} {'playbook s':>10} {'to Ready s':>10} "
          f"{'lab up s':>9} {'2nd playbook s':>14}")
    for count in counts:
        r = measure(count, args.lab)
        print(f"  {count:>5} {r['hosts']:>12.1f} {r['playbook']:>10.1f} {r['ready']:>10.1f} "
              f"{r['total']:>9.1f} {r['rerun']:>14.1f}")


if __name__ == "__main__":
    main()
