#!/usr/bin/env bash
# Runs the README's quickstart for real and checks it: every component comes
# up, endpoints.env has the keys it promises, the demo services answer through
# agent -> relay -> connector -> backend, a second run refuses to start
# twice, and --down stops every process it started. Called by scripts/test.sh
# (it cannot run inside `bazel test`, which would nest Bazel).
set -uo pipefail
cd "$(dirname "$0")/.."
fail() { echo "quickstart check FAILED: $*"; scripts/quickstart.sh --down >/dev/null 2>&1; exit 1; }

scripts/quickstart.sh --down >/dev/null 2>&1
out=$(scripts/quickstart.sh 2>&1) || fail "quickstart.sh exited non-zero: $(echo "$out" | tail -20)"
for c in backends intermediate relay connector agent; do
  [ -f ".ferry/run/$c.pid" ] && kill -0 "$(cat ".ferry/run/$c.pid")" 2>/dev/null ||
    fail "$c is not running"
done
for key in FERRY_INTERMEDIATE_ADDR FERRY_METRICS_URL FERRY_DNS_ADDR FERRY_CA_CERT FERRY_ADMIN_CERT \
  FERRY_ADMIN_KEY FERRY_DEMO_WEB FERRY_DEMO_TCP_ECHO FERRY_DEMO_UDP_ECHO FERRY_RELAY_METRICS_URL; do
  grep -q "^$key=" .ferry/endpoints.env || fail "endpoints.env lacks $key"
done
# shellcheck disable=SC1091
. .ferry/endpoints.env
curl -sf --max-time 5 "$FERRY_METRICS_URL" | grep -q '^ferry_connected_peers{role="connector"} 1' ||
  fail "the Intermediate does not count the quickstart's connector"
vip=$(dig @"${FERRY_DNS_ADDR%:*}" -p "${FERRY_DNS_ADDR##*:}" demo-web.demo.ferry.internal +short \
  +tries=1 +time=2)
case "$vip" in 10.100.0.*) ;; *) fail "DNS gave \"$vip\" for demo-web.demo.ferry.internal" ;; esac
# The demo services, through the tunnel.
web=$(curl -sf --max-time 5 "http://$FERRY_DEMO_WEB/") || fail "GET http://$FERRY_DEMO_WEB/ failed"
[ "$web" = "hello from demo-web" ] || fail "demo-web answered \"$web\""
echo_reply=$(python3 - "$FERRY_DEMO_TCP_ECHO" "$FERRY_DEMO_UDP_ECHO" <<'PY'
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
with socket.create_connection((host, int(port)), timeout=5) as s:
    s.sendall(b"tcp-hello")
    s.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
host, port = sys.argv[2].rsplit(":", 1)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(2)
reply = b""
for _ in range(5):  # UDP may drop; bounded retries
    u.sendto(b"udp-hello", (host, int(port)))
    try:
        reply = u.recv(4096)
        break
    except socket.timeout:
        pass
print(got.decode(), reply.decode())
PY
) || fail "the demo echo services could not be reached"
[ "$echo_reply" = "tcp-hello udp-hello" ] || fail "the demo echo services answered \"$echo_reply\""
curl -sf --max-time 5 "$FERRY_RELAY_METRICS_URL" |
  grep -q '^ferry_relay_frames_total{direction="in",service="demo-web"' ||
  fail "the relay's /metrics does not count demo-web's frames"
pids=$(cat .ferry/run/*.pid)
again=$(scripts/quickstart.sh 2>&1) || fail "second quickstart.sh run failed"
echo "$again" | grep -q "already running" || fail "a second run did not say the fabric is running"
scripts/quickstart.sh --down >/dev/null || fail "--down failed"
for pid in $pids; do
  kill -0 "$pid" 2>/dev/null && fail "pid $pid still runs after --down"
done
echo "quickstart check passed"
