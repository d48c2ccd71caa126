#!/usr/bin/env bash
# Validate the monitoring stack: Prometheus config and rules (promtool check + the rule unit
# tests), the AlertManager config (amtool), and the Grafana dashboards (valid JSON).
# promtool comes with Debian's `prometheus` package, amtool with `prometheus-alertmanager`;
# when one is missing they are installed if we are root with apt, otherwise we stop.
set -euo pipefail
cd "$(dirname "$0")/../monitoring"

need() {  # need <command> <debian package>
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing $2 (for $1)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
  fi
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "error: $1 not found; install the Debian package '$2' (apt-get install $2) or put $1 on PATH" >&2
  exit 1
}

need promtool prometheus
need amtool prometheus-alertmanager

echo "== promtool check config"
promtool check config prometheus/prometheus.yml
echo "== promtool check rules"
promtool check rules prometheus/rules/*.rules.yml
echo "== promtool test rules"
(cd prometheus/rules && promtool test rules ./*.rules.test.yml)
echo "== amtool check-config"
amtool check-config alertmanager/alertmanager.yml
echo "== grafana dashboards"
python3 - grafana/dashboards/*.json <<'PY'
import json
import sys

for path in sys.argv[1:]:
    with open(path) as fh:
        dashboard = json.load(fh)
    if not dashboard.get("uid") or not dashboard.get("panels"):
        sys.exit(f"{path}: a dashboard needs a uid and panels")
    print(f"  {path}: {len(dashboard['panels'])} panels")
PY
echo "monitoring config OK"
