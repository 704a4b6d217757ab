#!/usr/bin/env bash
# Every Ferry binary starts for real: --help lists its flags, and the
# relay, connector and agent connect to a real Intermediate over mTLS, report
# ready, and exit 0 on SIGTERM (the Intermediate too, last).
set -euo pipefail
# shellcheck source=tests/intermediate_fixture.sh
source "$(dirname "$0")/intermediate_fixture.sh"
fixture_init
RELAY="$(fixture_runfile dataplane/ferry-relay)"
CONNECTOR="$(fixture_runfile dataplane/ferry-connector)"
AGENT="$(fixture_runfile agent/ferry-agent)"

# --help: absl prints the flags (and exits 1, absl's convention for --help).
check_help() {  # binary flag...
  local bin=$1 out
  shift
  out=$("$bin" --help 2>&1 || true)
  for flag in "$@" log_dir ready_file; do
    grep -q -- "--$flag" <<<"$out" || fail "$(basename "$bin") --help does not show --$flag"
  done
}
check_help "$FERRY_INTERMEDIATE" listen admin_listen ca_cert trust_domain state_dir insecure_dev_mode
check_help "$RELAY" intermediate ca_cert admin_listen listen stream_listen workers advertise_host
check_help "$CONNECTOR" config intermediate admin_listen listen stream_listen workers
check_help "$AGENT" intermediate expose config admin_listen
"$FERRYCTL" --help >/dev/null || fail "ferryctl --help failed"

fixture_pki acme
fixture_start_intermediate
for spec in "relay ops relay-1" "connector acme edge-1" "agent acme laptop"; do
  read -r role tenant name <<<"$spec"
  "$FERRYCTL" pki issue --dir "$FIXTURE_PKI" --tenant "$tenant" --role "$role" --name "$name" \
    >/dev/null || fail "pki issue $spec"
done
P=$FIXTURE_PKI
cat >"$FIXTURE_DIR/connector.yaml" <<YAML
intermediates: ["$FIXTURE_GRPC_ADDRESS"]
tls: { ca_cert: "$P/ca.crt", cert: "$P/connector-acme-edge-1.crt", key: "$P/connector-acme-edge-1.key" }
admin_listen: "127.0.0.1:0"
listen: "127.0.0.1:0"
services:
  - name: web
    protocol: PROTOCOL_TCP
    backends: [{ address: "127.0.0.1:8080" }]
YAML

start() {  # name binary args...
  local name=$1 bin=$2
  shift 2
  "$bin" --ready_file="$FIXTURE_DIR/$name.ready" --log_dir="$FIXTURE_DIR" "$@" \
    >"$FIXTURE_DIR/$name.out" 2>&1 &
  eval "${name}_pid=$!"
  fixture_track_pid $!
  fixture_wait 30 "$name ready" test -f "$FIXTURE_DIR/$name.ready"
}
start relay "$RELAY" --intermediate="$FIXTURE_GRPC_ADDRESS" --admin_listen=127.0.0.1:0 \
  --listen=127.0.0.1:0 --stream_listen=127.0.0.1:0 \
  --ca_cert="$P/ca.crt" --cert="$P/relay-ops-relay-1.crt" --key="$P/relay-ops-relay-1.key"
start connector "$CONNECTOR" --config="$FIXTURE_DIR/connector.yaml"
start agent "$AGENT" --intermediate="$FIXTURE_GRPC_ADDRESS" --ca_cert="$P/ca.crt" \
  --cert="$P/agent-acme-laptop.crt" --key="$P/agent-acme-laptop.key" --expose=web=127.0.0.1:0 --admin_listen=127.0.0.1:0

metric() { curl -sf "http://$FIXTURE_ADMIN_ADDRESS/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
fixture_wait 20 "relay and connector counted by the Intermediate" \
  bash -c "[ \"\$(curl -sf http://$FIXTURE_ADMIN_ADDRESS/metrics | awk '\$1 == \"ferry_connected_peers{role=\\\"relay\\\"}\" || \$1 == \"ferry_connected_peers{role=\\\"connector\\\"}\" { s += \$2 } END { print s }')\" = 2 ]"

# An agent whose certificate is from another CA cannot authenticate.
mkdir -p "$FIXTURE_DIR/other"
"$FERRYCTL" pki init --dir "$FIXTURE_DIR/other" >/dev/null
"$FERRYCTL" pki issue --dir "$FIXTURE_DIR/other" --tenant acme --role agent --name x >/dev/null
if "$AGENT" --intermediate="$FIXTURE_GRPC_ADDRESS" --ca_cert="$P/ca.crt" \
  --cert="$FIXTURE_DIR/other/agent-acme-x.crt" --key="$FIXTURE_DIR/other/agent-acme-x.key" \
  >"$FIXTURE_DIR/bad-agent.out" 2>&1; then
  fail "an agent with another CA's certificate started"
fi

for name in agent connector relay; do
  pid_var="${name}_pid"
  kill -TERM "${!pid_var}"
  rc=0
  wait "${!pid_var}" || rc=$?
  [ "$rc" -eq 0 ] || fail "$name exited $rc on SIGTERM: $(tail -5 "$FIXTURE_DIR/$name.out")"
done
kill -TERM "$FIXTURE_INTERMEDIATE_PID"
rc=0
wait "$FIXTURE_INTERMEDIATE_PID" || rc=$?
[ "$rc" -eq 0 ] || fail "ferry-intermediate exited $rc on SIGTERM"
[ "$(metric ferry_route_version 2>/dev/null || true)" = "" ] || fail "Intermediate still serving"
echo "PASS"
