#!/usr/bin/env bash
# Runs icmp_probe_test in a network namespace of its own: the kernel hands out unprivileged ICMP
# datagram sockets only to groups in net.ipv4.ping_group_range, a per-namespace setting that is
# closed on this host. Inside the new namespace (loopback only) the test opens it; the host's
# namespace and settings are untouched.
set -euo pipefail
BIN="$TEST_SRCDIR/$TEST_WORKSPACE/health/icmp_probe_test"
export FERRY_REQUIRE_ICMP=1
exec unshare --net bash -c '
  set -e
  ip link set lo up
  echo "0 2147483647" >/proc/sys/net/ipv4/ping_group_range
  exec "$0" --gtest_filter="-*RefusedSocket*"
' "$BIN"
