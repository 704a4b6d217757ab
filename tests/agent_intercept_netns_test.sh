#!/usr/bin/env bash
# Runs //tests:agent_intercept_test in a network and mount namespace of its
# own, so that the agent's intercept mode can put VIPs on lo, the
# Intermediate can answer DNS on 127.0.0.1:53 and resolv.conf can point at it,
# all without touching the host:
#   - lo up; ping_group_range open (the connector's ICMP datagram socket and
#     ping); icmp_echo_ignore_all=1 (the kernel must not answer ping of the
#     VIPs itself: the agent does, when the backend does);
#   - /etc/resolv.conf bind-mounted to "nameserver 127.0.0.1" in this mount
#     namespace only, so curl resolves <svc>.<tenant>.ferry.internal through
#     the Intermediate;
#   - the ICMP service's backend is 10.77.0.2, a second network namespace
#     (a host whose kernel answers ping) joined by a veth pair; the test makes
#     it stop answering through FERRY_INTERCEPT_BACKEND_NETNS.
set -euo pipefail
BIN="$TEST_SRCDIR/$TEST_WORKSPACE/tests/agent_intercept_test"
for tool in curl ping ip nsenter unshare mount setpriv getent; do
  if ! command -v "$tool" >/dev/null; then
    echo "agent_intercept_netns_test needs $tool (Debian: curl, iputils-ping, iproute2," \
      "util-linux, mount; scripts/setup.sh)" >&2
    exit 1
  fi
done
WORK="$TEST_TMPDIR/netns"
mkdir -p "$WORK"
export WORK
export FERRY_INTERCEPT_NETNS=1
export FERRY_INTERCEPT_BACKEND_NETNS="$WORK/backend.netns"
exec unshare --net --mount bash -c '
  set -e
  ip link set lo up
  echo "0 2147483647" >/proc/sys/net/ipv4/ping_group_range
  echo 1 >/proc/sys/net/ipv4/icmp_echo_ignore_all
  echo "nameserver 127.0.0.1" >"$WORK/resolv.conf"
  mount --bind "$WORK/resolv.conf" /etc/resolv.conf
  touch "$FERRY_INTERCEPT_BACKEND_NETNS"
  unshare --net="$FERRY_INTERCEPT_BACKEND_NETNS" true
  nsenter --net="$FERRY_INTERCEPT_BACKEND_NETNS" ip link add fv1 type veth peer name fv0 netns $$
  nsenter --net="$FERRY_INTERCEPT_BACKEND_NETNS" sh -c "
    ip link set lo up
    ip addr add 10.77.0.2/24 dev fv1
    ip link set fv1 up"
  ip addr add 10.77.0.1/24 dev fv0
  ip link set fv0 up
  exec "$0" "$@"
' "$BIN" "$@"
