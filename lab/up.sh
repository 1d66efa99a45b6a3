#!/usr/bin/env bash
# The set-up-and-run command: install everything, start the cluster, apply the demo app, show it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash lab/install.sh
.venv/bin/python -m lab.demo up
.venv/bin/berth cluster status
.venv/bin/berth get deployments,services,configmaps,secrets -A 2>/dev/null \
  || for kind in deployments services configmaps secrets; do .venv/bin/berth get "$kind" -A; done
