#!/usr/bin/env bash
# Starts a local Ferry fabric in the background and tells you how to reach it.
#
#   scripts/quickstart.sh         set up, build, start (or show the running fabric)
#   scripts/quickstart.sh --down  stop what the quickstart started (by pid files)
#
# Everything lives under .ferry/ in the checkout: a dev PKI (pki/), state,
# logs, pid files and endpoints.env (KEY=value lines for scripts).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
FERRY="$ROOT/.ferry"
RUN="$FERRY/run"
LOGS="$FERRY/logs"
PKI="$FERRY/pki"
COMPONENTS=(backends intermediate relay connector agent)

pid_alive() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

down() {
  local stopped=0
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    local c=${COMPONENTS[$i]}
    if pid_alive "$c"; then
      local pid
      pid=$(cat "$RUN/$c.pid")
      kill -TERM "$pid"
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
      echo "stopped $c (pid $pid)"
      stopped=$((stopped + 1))
    fi
    rm -f "$RUN/$c.pid" "$RUN/$c.ready"
  done
  [ "$stopped" -gt 0 ] || echo "nothing was running"
}

if [ "${1:-}" = "--down" ]; then
  down
  exit 0
fi
if [ $# -gt 0 ]; then
  echo "usage: scripts/quickstart.sh [--down]" >&2
  exit 2
fi

scripts/setup.sh

if pid_alive intermediate; then
  echo "The fabric is already running (stop it with scripts/quickstart.sh --down)."
else
  echo "== Building"
  bazel build //controlplane:ferry-intermediate //dataplane:ferry-relay \
    //dataplane:ferry-connector //agent:ferry-agent //cli:ferryctl //tests/backends:backend_server
  BIN="$ROOT/.ferry/bin"
  mkdir -p "$BIN" "$RUN" "$LOGS"
  for b in controlplane/ferry-intermediate dataplane/ferry-relay dataplane/ferry-connector \
    agent/ferry-agent cli/ferryctl tests/backends/backend_server; do
    install -m 0755 "bazel-bin/$b" "$BIN/"
  done

  echo "== Dev PKI in $PKI"
  if [ ! -f "$PKI/ca.crt" ]; then "$BIN/ferryctl" pki init --dir "$PKI"; fi
  issue() {  # tenant role name
    [ -f "$PKI/$2-$1-$3.crt" ] || "$BIN/ferryctl" pki issue --dir "$PKI" --tenant "$1" \
      --role "$2" --name "$3" >/dev/null
  }
  issue ops intermediate intermediate
  issue ops relay relay-1
  issue demo connector edge-1
  issue demo agent laptop
  issue demo admin operator

  start() {  # name binary args...
    local name=$1 bin=$2
    shift 2
    rm -f "$RUN/$name.ready"
    "$BIN/$bin" --log_dir="$LOGS" --ready_file="$RUN/$name.ready" "$@" \
      >"$LOGS/$name.out" 2>&1 &
    echo $! >"$RUN/$name.pid"
    for _ in $(seq 100); do
      [ -f "$RUN/$name.ready" ] && { echo "  $name ready (pid $(cat "$RUN/$name.pid"))"; return; }
      kill -0 "$(cat "$RUN/$name.pid")" 2>/dev/null || break
      sleep 0.1
    done
    echo "  $name did not become ready; its log:" >&2
    tail -20 "$LOGS/$name.out" "$LOGS/$bin.INFO" 2>/dev/null >&2 || true
    down >/dev/null
    exit 1
  }
  ready_value() { sed -n "s/^$2=//p" "$RUN/$1.ready"; }

  echo "== Starting"
  # The demo services' backends: an HTTP server, a TCP echo and a UDP echo.
  start backends backend_server --name=demo-web --http=127.0.0.1:0 --tcp_echo=127.0.0.1:0 \
    --udp_echo=127.0.0.1:0
  start intermediate ferry-intermediate --listen=127.0.0.1:0 --admin_listen=127.0.0.1:0 \
    --dns_listen=127.0.0.1:0 \
    --ca_cert="$PKI/ca.crt" --cert="$PKI/intermediate-ops-intermediate.crt" \
    --key="$PKI/intermediate-ops-intermediate.key" --state_dir="$FERRY/state"
  GRPC=$(ready_value intermediate grpc_address)
  start relay ferry-relay --intermediate="$GRPC" --admin_listen=127.0.0.1:0 \
    --listen=127.0.0.1:0 --stream_listen=127.0.0.1:0 --workers=2 \
    --ca_cert="$PKI/ca.crt" --cert="$PKI/relay-ops-relay-1.crt" --key="$PKI/relay-ops-relay-1.key" \
    --name=relay-1
  # The demo connector's services, each backed by one of the demo backends.
  cat >"$FERRY/connector.yaml" <<EOF
# Written by scripts/quickstart.sh. Edits take effect when saved (an invalid
# file is refused and the last good config stays live).
intermediates: ["$GRPC"]
tls:
  ca_cert: "$PKI/ca.crt"
  cert: "$PKI/connector-demo-edge-1.crt"
  key: "$PKI/connector-demo-edge-1.key"
admin_listen: "127.0.0.1:0"
listen: "127.0.0.1:0"
# Each service is health-checked (docs/LIFECYCLE.md): stop a backend and it
# leaves the routes within interval x unhealthy_threshold.
services:
  - name: demo-web
    protocol: PROTOCOL_TCP
    backends: [{ address: "$(ready_value backends http)" }]
    health_check: { interval: 2s, http: { path: /, expected_body_substring: "hello from" } }
  - name: demo-tcp-echo
    protocol: PROTOCOL_TCP
    backends: [{ address: "$(ready_value backends tcp_echo)" }]
    health_check: { interval: 2s, tcp: {} }
  - name: demo-udp-echo
    protocol: PROTOCOL_UDP
    backends: [{ address: "$(ready_value backends udp_echo)" }]
    health_check: { interval: 2s, udp: { send: ping, expect_prefix: ping } }
EOF
  start connector ferry-connector --config="$FERRY/connector.yaml" --workers=2
  # Sessions need the connector registered: wait until the Intermediate counts it.
  METRICS="http://$(ready_value intermediate admin_address)/metrics"
  for _ in $(seq 100); do
    curl -sf --max-time 2 "$METRICS" | grep -q '^ferry_connected_peers{role="connector"} 1' && break
    sleep 0.1
  done
  # The agent exposes every demo service on a local port (picked by the kernel).
  start agent ferry-agent --intermediate="$GRPC" --ca_cert="$PKI/ca.crt" \
    --cert="$PKI/agent-demo-laptop.crt" --key="$PKI/agent-demo-laptop.key" \
    --admin_listen=127.0.0.1:0 --expose=demo-web=127.0.0.1:0 \
    --expose=demo-tcp-echo=127.0.0.1:0 --expose=demo-udp-echo=127.0.0.1:0
  for _ in $(seq 100); do  # until every exposure is served (the agent retries by itself)
    [ "$(grep -c '^expose\.' "$RUN/agent.ready")" -ge 3 ] && break
    sleep 0.1
  done

  cat >"$FERRY/endpoints.env" <<EOF
FERRY_INTERMEDIATE_ADDR=$GRPC
FERRY_METRICS_URL=http://$(ready_value intermediate admin_address)/metrics
FERRY_DNS_ADDR=$(ready_value intermediate dns_address)
FERRY_CA_CERT=$PKI/ca.crt
FERRY_ADMIN_CERT=$PKI/admin-demo-operator.crt
FERRY_ADMIN_KEY=$PKI/admin-demo-operator.key
FERRY_DEMO_WEB=$(ready_value agent expose.demo-web)
FERRY_DEMO_TCP_ECHO=$(ready_value agent expose.demo-tcp-echo)
FERRY_DEMO_UDP_ECHO=$(ready_value agent expose.demo-udp-echo)
FERRY_RELAY_METRICS_URL=http://$(ready_value relay admin_address)/metrics
# ferryctl's connection settings (docs/FERRYCTL.md): the demo operator admin.
FERRY_INTERMEDIATE=$GRPC
FERRY_CERT=$PKI/admin-demo-operator.crt
FERRY_KEY=$PKI/admin-demo-operator.key
EOF
fi

# shellcheck disable=SC1091
. "$FERRY/endpoints.env"
echo
echo "== Ferry is running"
printf '%-14s %-8s %-10s %s\n' COMPONENT PID STATE ADDRESS
for c in "${COMPONENTS[@]}"; do
  state=down
  pid_alive "$c" && state=up
  addr=$(sed -n 's/^grpc_address=//p' "$RUN/$c.ready" 2>/dev/null)
  [ -n "$addr" ] || addr=$(sed -n 's/^admin_address=//p' "$RUN/$c.ready" 2>/dev/null)
  printf '%-14s %-8s %-10s %s\n' "$c" "$(cat "$RUN/$c.pid" 2>/dev/null || echo -)" "$state" \
    "${addr:--}"
done
metrics=$(curl -s --max-time 5 "$FERRY_METRICS_URL" || true)
echo
metric() { echo "$metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
echo "Connected relays: $(metric 'ferry_connected_peers{role="relay"}')," \
  "connectors: $(metric 'ferry_connected_peers{role="connector"}')," \
  "route version: $(metric ferry_route_version)"
echo
# The status dashboard (services, health, VIPs, sessions) from the admin API.
FERRY_INTERMEDIATE=$FERRY_INTERMEDIATE_ADDR FERRY_CA_CERT=$FERRY_CA_CERT FERRY_CERT=$FERRY_ADMIN_CERT \
  FERRY_KEY=$FERRY_ADMIN_KEY \
  "$FERRY/bin/ferryctl" status || echo "(ferryctl status failed; see above)"
cat <<EOF

The demo services, through agent -> relay -> connector -> backend:
  demo-web       http://$FERRY_DEMO_WEB/
  demo-tcp-echo  tcp $FERRY_DEMO_TCP_ECHO
  demo-udp-echo  udp $FERRY_DEMO_UDP_ECHO

Endpoints are in .ferry/endpoints.env; logs in .ferry/logs/. Try:
  . .ferry/endpoints.env && curl -s http://\$FERRY_DEMO_WEB/
  echo hello | nc -q1 \${FERRY_DEMO_TCP_ECHO%:*} \${FERRY_DEMO_TCP_ECHO##*:}
  echo hello | nc -u -w1 \${FERRY_DEMO_UDP_ECHO%:*} \${FERRY_DEMO_UDP_ECHO##*:}
  curl -s \$FERRY_RELAY_METRICS_URL | grep ^ferry_relay_frames_total
  . .ferry/endpoints.env && curl -s \$FERRY_METRICS_URL | grep ^ferry_
  dig @\${FERRY_DNS_ADDR%:*} -p \${FERRY_DNS_ADDR##*:} demo-web.demo.ferry.internal +short
  set -a; . .ferry/endpoints.env; set +a; .ferry/bin/ferryctl status --watch
  .ferry/bin/ferryctl logs connector --since=5m
  .ferry/bin/ferryctl pki list --dir .ferry/pki
  tail -f .ferry/logs/ferry-intermediate.INFO
Stop everything with: scripts/quickstart.sh --down
EOF
