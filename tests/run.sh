#!/usr/bin/env bash
# The test command: installs what it needs, lints, then runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash lab/install.sh
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
