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
.venv/bin/berth rollout status deploy/web --timeout=120s
.venv/bin/berth get nodes
.venv/bin/berth get pods -o wide
.venv/bin/berth get all -A
# the web Service: its node port on every host's address, spread over the replicas
for address in $(.venv/bin/berth get nodes -o jsonpath='{.items[*].spec.address}'); do
  echo "http://$address:30080/ -> $(curl -s --max-time 5 "http://$address:30080/")"
done
# the demo's autoscaler with real figures: its pods' CPU, as the agents measured it (bounded wait)
for _ in $(seq 1 30); do
  .venv/bin/berth get hpa web | grep -q unknown || break
  sleep 1
done
.venv/bin/berth get hpa web
# and the web Service by its name from inside the hello pod (the cluster's DNS)
.venv/bin/berth exec hello -- sh -c 'printf "GET / HTTP/1.0\r\n\r\n" | nc -w 3 web 80 | tail -n 1'

