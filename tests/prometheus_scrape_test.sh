#!/usr/bin/env bash
# A real Prometheus server (Debian's `prometheus` package) scrapes the
# Intermediate's admin /metrics port and answers PromQL queries for Ferry
# metrics: proves that the exposition is valid for the real scraper, not only
# for our own parser.
#
# Starts a dev PKI and ferry-intermediate on loopback port 0, writes a scrape
# config for its admin address (1 s interval), starts prometheus on a free
# loopback port with a private TSDB under $TEST_TMPDIR, and waits (60 s at most)
# until /api/v1/query answers for:
#   - ferry_route_version: the value the Intermediate's own /metrics shows,
#     from the instance and job of our scrape config;
#   - ferry_connected_peers{role="connector"}: a labelled series, 0 with no
#     connector connected;
#   - ferry_services: one series per state (healthy, unhealthy, unknown).
# Both processes are stopped by PID when the test exits.
set -euo pipefail

# shellcheck source=tests/intermediate_fixture.sh
source "${TEST_SRCDIR:?}/${TEST_WORKSPACE:?}/tests/intermediate_fixture.sh"

PROMETHEUS="$(command -v prometheus || true)"
[[ -n "$PROMETHEUS" ]] || fail "prometheus is not installed; run scripts/setup.sh"
command -v curl >/dev/null || fail "curl is not installed; run scripts/setup.sh"

fixture_init
fixture_pki acme
fixture_start_intermediate

# The Intermediate's own view, to compare with what Prometheus stored.
own_route_version="$(curl -sf "http://$FIXTURE_ADMIN_ADDRESS/metrics" |
  sed -n 's/^ferry_route_version \([0-9.e+]*\)$/\1/p')"
[[ -n "$own_route_version" ]] || fail "the Intermediate's /metrics has no ferry_route_version"

readonly JOB="ferry-intermediate"
cat >"$FIXTURE_DIR/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: $JOB
    metrics_path: /metrics
    static_configs:
      - targets: ["$FIXTURE_ADMIN_ADDRESS"]
EOF

prometheus_ready() {
  curl -sf "http://$PROMETHEUS_ADDRESS/-/ready" >/dev/null 2>&1
}

# Ends the wait early when prometheus has exited (e.g. the port was taken).
prometheus_ready_or_exited() {
  prometheus_ready || ! kill -0 "$PROMETHEUS_PID" 2>/dev/null
}

# Another process may take the port between our probe and prometheus' bind:
# then try another port, three times at most.
PROMETHEUS_PID=""
for attempt in 1 2 3; do
  port="$(fixture_free_port)"
  PROMETHEUS_ADDRESS="127.0.0.1:$port"
  "$PROMETHEUS" \
    --config.file="$FIXTURE_DIR/prometheus.yml" \
    --storage.tsdb.path="$FIXTURE_DIR/tsdb" \
    --web.listen-address="$PROMETHEUS_ADDRESS" \
    --log.level=warn \
    >"$FIXTURE_DIR/prometheus.log" 2>&1 &
  PROMETHEUS_PID=$!
  fixture_track_pid "$PROMETHEUS_PID"
  fixture_wait 60 "prometheus on $PROMETHEUS_ADDRESS to be ready" prometheus_ready_or_exited
  if kill -0 "$PROMETHEUS_PID" 2>/dev/null; then break; fi
  grep -q "address already in use" "$FIXTURE_DIR/prometheus.log" ||
    fail "prometheus exited at start: $(tail -n 5 "$FIXTURE_DIR/prometheus.log")"
  echo "prometheus: port $port was taken meanwhile (attempt $attempt); trying another"
  PROMETHEUS_PID=""
done
[[ -n "$PROMETHEUS_PID" ]] || fail "prometheus found no free port in 3 attempts"
echo "prometheus (PID $PROMETHEUS_PID) on $PROMETHEUS_ADDRESS scrapes $FIXTURE_ADMIN_ADDRESS"

# Runs an instant query and prints the result vector as lines
# "<labels as k=v,...> <value>", sorted; prints nothing while it is empty.
query() {
  curl -sf --get "http://$PROMETHEUS_ADDRESS/api/v1/query" --data-urlencode "query=$1" |
    python3 -c '
import json, sys
answer = json.load(sys.stdin)
if answer.get("status") != "success":
    sys.exit("query failed: %s" % answer)
lines = []
for series in answer["data"]["result"]:
    labels = ",".join("%s=%s" % kv for kv in sorted(series["metric"].items()))
    lines.append("%s %s" % (labels, series["value"][1]))
print("\n".join(sorted(lines)))'
}

has_result() {
  [[ -n "$(query "$1")" ]]
}

wanted_route_version="ferry_route_version{job=\"$JOB\",instance=\"$FIXTURE_ADMIN_ADDRESS\"}"
fixture_wait 60 "a Prometheus answer for $wanted_route_version" has_result "$wanted_route_version"

got="$(query "$wanted_route_version")"
expected="__name__=ferry_route_version,instance=$FIXTURE_ADMIN_ADDRESS,job=$JOB $own_route_version"
[[ "$got" == "$expected" ]] ||
  fail "ferry_route_version: Prometheus answered '$got', expected '$expected'"
echo "ok: $got"

got="$(query 'ferry_connected_peers{role="connector"}')"
expected="__name__=ferry_connected_peers,instance=$FIXTURE_ADMIN_ADDRESS,job=$JOB,role=connector 0"
[[ "$got" == "$expected" ]] ||
  fail "ferry_connected_peers: Prometheus answered '$got', expected '$expected'"
echo "ok: $got"

got="$(query 'count by (state) (ferry_services)')"
expected="$(printf 'state=healthy 1\nstate=unhealthy 1\nstate=unknown 1')"
[[ "$got" == "$expected" ]] ||
  fail "count by (state) (ferry_services): Prometheus answered '$got', expected '$expected'"
echo "ok: ferry_services has one series for each of healthy, unhealthy, unknown"

got="$(query "up{job=\"$JOB\"}")"
[[ "$got" == "__name__=up,instance=$FIXTURE_ADMIN_ADDRESS,job=$JOB 1" ]] ||
  fail "up{job=\"$JOB\"}: Prometheus answered '$got', expected the target up (1)"
echo "ok: the scrape target is up"
echo "PASS: Prometheus scraped the Intermediate and answered queries for ferry metrics"
