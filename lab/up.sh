#!/usr/bin/env bash
# The set-up-and-run command: install everything, make the lab hosts, deploy masters and
# agents on them with ansible/site.yml, apply the demo app, and show the cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
bash lab/install.sh
.venv/bin/berth lab up --hosts "${BERTH_LAB_HOSTS:-3}"
.venv/bin/berth apply -f lab/demo.yaml
# the demo pod: scheduled, then started on its host over SSH (bounded wait)
for _ in $(seq 1 60); do
  .venv/bin/berth get pod hello -o yaml | grep -q '^  phase: Running' && break
  sleep 1
done
.venv/bin/berth get nodes
.venv/bin/berth get pods -o wide
.venv/bin/berth get all -A
