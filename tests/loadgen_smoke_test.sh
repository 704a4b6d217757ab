#!/usr/bin/env bash
# ferry-loadgen end to end: a real Intermediate and ferry-relay, and the
# loadgen playing both the agent and the connector end for 1 s at a modest
# rate. Frames get through the relay, and none fails authentication: not at
# the loadgen's sink, not at the relay (during the run or in its lifetime).
set -euo pipefail
# shellcheck source=tests/intermediate_fixture.sh
source "$(dirname "$0")/intermediate_fixture.sh"
fixture_init
RELAY="$(fixture_runfile dataplane/ferry-relay)"
LOADGEN="$(fixture_runfile bench/ferry-loadgen)"

fixture_pki ops
fixture_start_intermediate
for spec in "relay ops relay-1" "connector bench loadgen" "agent bench loadgen"; do
  read -r role tenant name <<<"$spec"
  "$FERRYCTL" pki issue --dir "$FIXTURE_PKI" --tenant "$tenant" --role "$role" --name "$name" \
    >/dev/null || fail "pki issue $spec"
done
P=$FIXTURE_PKI

"$RELAY" --ready_file="$FIXTURE_DIR/relay.ready" --log_dir="$FIXTURE_DIR" \
  --intermediate="$FIXTURE_GRPC_ADDRESS" --workers=1 --listen=127.0.0.1:0 \
  --admin_listen=127.0.0.1:0 --ca_cert="$P/ca.crt" --cert="$P/relay-ops-relay-1.crt" \
  --key="$P/relay-ops-relay-1.key" >"$FIXTURE_DIR/relay.log" 2>&1 &
RELAY_PID=$!
fixture_track_pid "$RELAY_PID"
fixture_wait 20 "relay ready" test -f "$FIXTURE_DIR/relay.ready"
RELAY_ADMIN="$(sed -n 's/^admin_address=//p' "$FIXTURE_DIR/relay.ready")"

OUT="$FIXTURE_DIR/loadgen.out"
rc=0
timeout 25 "$LOADGEN" --intermediate="$FIXTURE_GRPC_ADDRESS" --ca_cert="$P/ca.crt" \
  --agent_cert="$P/agent-bench-loadgen.crt" --agent_key="$P/agent-bench-loadgen.key" \
  --connector_cert="$P/connector-bench-loadgen.crt" \
  --connector_key="$P/connector-bench-loadgen.key" \
  --duration=1s --rate=2000 --flows=16 --payload=64 --setup_timeout=15s \
  --relay_metrics="http://$RELAY_ADMIN/metrics" --relay_pid="$RELAY_PID" --json \
  >"$OUT" 2>"$FIXTURE_DIR/loadgen.log" || rc=$?
cat "$OUT"
[ "$rc" -eq 0 ] || fail "ferry-loadgen exited $rc: $(tail -5 "$FIXTURE_DIR/loadgen.log")"

JSON="$(grep '^{' "$OUT")" || fail "no JSON line in the loadgen's output"
number() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" <<<"$JSON"; }
sent="$(number sent)"
delivered="$(number delivered)"
[[ "$sent" =~ ^[1-9][0-9]*$ ]] || fail "the loadgen sent nothing: $JSON"
[[ "$delivered" =~ ^[1-9][0-9]*$ ]] || fail "nothing reached the sink: $JSON"
[ "$delivered" -le "$sent" ] || fail "more frames delivered ($delivered) than sent ($sent)"
grep -q '"sink_drops":{}' <<<"$JSON" || fail "the sink refused frames: $JSON"
grep -q '"relay_drops":{' <<<"$JSON" || fail "the loadgen did not read the relay's drops: $JSON"
for reason in bad_tag wrong_direction replayed crypto_error; do
  if grep -q "\"relay_drops\":{[^}]*\"$reason\"" <<<"$JSON"; then
    fail "the relay dropped frames as $reason during the run: $JSON"
  fi
  lifetime="$(curl -sf "http://$RELAY_ADMIN/metrics" |
    awk -v m="ferry_relay_drops_total{reason=\"$reason\"}" '$1 == m { print $2 }')"
  [ "$lifetime" = 0 ] || fail "ferry_relay_drops_total{reason=\"$reason\"} is '$lifetime', not 0"
done
echo "PASS: $delivered of $sent frames through the relay, no authentication drops"
