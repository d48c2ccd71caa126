#!/usr/bin/env bash
# Validate the monitoring stack: Prometheus config and rules (promtool check + the rule unit
# tests), the AlertManager config (amtool), the Grafana dashboards (what scripts/dev/dashboards.py
# makes, every panel query parsed by promtool) and the Kubernetes copy in deployment/k8s/monitoring.
# promtool comes with Debian's `prometheus` package, amtool with `prometheus-alertmanager`;
# when one is missing they are installed if we are root with apt, otherwise we stop.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT/monitoring"
# the project's interpreter when `make install` made one (PyYAML for the k8s copy), else python3
PY="$ROOT/.venv/bin/python"
[ -x "$PY" ] || PY=python3

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
echo "== alertmanager routes: every alert rule reaches its receivers"
# expected: the retraining receiver for action=retrain, then people by severity
"$PY" - prometheus/rules/*.rules.yml <<'PY' | while read -r receivers labels; do
import sys
import yaml

for path in sys.argv[1:]:
    for group in yaml.safe_load(open(path))["groups"]:
        for rule in group["rules"]:
            labels = rule.get("labels", {})
            if "alert" not in rule or "severity" not in labels:
                continue  # a severity taken from the series (the registry's rules) routes as it comes
            people = {"critical": "platform-critical", "warning": "platform-warning"}
            receivers = [people.get(labels["severity"], "platform-default")]
            if labels.get("action") == "retrain":
                receivers.insert(0, "pipeline-orchestrator-retrain")
            pairs = " ".join(f"{k}={v}" for k, v in {"alertname": rule["alert"], **labels}.items())
            print(",".join(receivers), pairs)
PY
  # shellcheck disable=SC2086 # one argument per label
  amtool config routes test --config.file=alertmanager/alertmanager.yml --verify.receivers="$receivers" \
    $labels >/dev/null 2>&1 || { echo "error: $labels does not reach $receivers" >&2; exit 1; }
  echo "  $labels -> $receivers"
done
echo "== grafana dashboards"
"$PY" "$ROOT/scripts/dev/dashboards.py" --check
queries="$(mktemp -d)"
trap 'rm -rf "$queries"' EXIT
# each panel query (variables as "All", Grafana's intervals as durations) as a recording rule:
# promtool parses every one
"$PY" - grafana/dashboards/*.json > "$queries/dashboards.rules.yml" <<'PY'
import json
import re
import sys

print("groups:")
for number, path in enumerate(sys.argv[1:]):
    with open(path) as fh:
        dashboard = json.load(fh)
    if not dashboard.get("uid") or not dashboard.get("panels"):
        sys.exit(f"{path}: a dashboard needs a uid and panels")
    print(f"  - name: {json.dumps(path)}\n    rules:")
    count = 0
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$__rate_interval", "5m").replace("$__range", "1h")
            expr = re.sub(r"\$\{?\w+\}?", ".*", expr)
            print(f"      - record: dashboard:query_{number}_{count}\n        expr: {json.dumps(expr)}")
            count += 1
    print(f"{path}: {count} panel queries", file=sys.stderr)
PY
promtool check rules "$queries/dashboards.rules.yml" >/dev/null
echo "== kubernetes copy (deployment/k8s/monitoring)"
"$PY" "$ROOT/scripts/dev/monitoring_k8s.py" --check
amtool check-config "$ROOT/deployment/k8s/monitoring/alertmanager.yaml" >/dev/null
echo "monitoring config OK"
