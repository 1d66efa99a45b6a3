#!/usr/bin/env bash
# The test command: installs what it needs, lints, then runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash lab/install.sh
.venv/bin/ruff check .
# Two files at a time (pytest-xdist; a file's module-scoped lab stays on one worker): a lab test
# spends most of its time waiting on its hosts, so two share the machine's two cores.
exec .venv/bin/python -m pytest -q -p no:cacheprovider -n 2 --dist loadfile "$@"
