#!/usr/bin/env bash
# Validate Prometheus config, alert rules (+ their unit tests) and the AlertManager config.
set -euo pipefail
cd "$(dirname "$0")/../monitoring"
if ! command -v promtool >/dev/null || ! command -v amtool >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      prometheus prometheus-alertmanager >/dev/null
  else
    echo "promtool/amtool missing: install Debian's prometheus and prometheus-alertmanager packages" >&2
    exit 1
  fi
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cp -r prometheus/rules "$tmp/rules"
sed 's#/etc/prometheus/rules#rules#' prometheus/prometheus.yml > "$tmp/prometheus.yml"
(cd "$tmp" && promtool check config prometheus.yml)
(cd prometheus/rules && promtool test rules platform.rules.test.yml)
amtool check-config alertmanager/alertmanager.yml
python3 -c "import json,sys; [json.load(open(f)) for f in sys.argv[1:]]" grafana/dashboards/*.json
echo "monitoring config OK"
