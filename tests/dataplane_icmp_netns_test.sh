#!/usr/bin/env bash
# Runs the ICMP echo end-to-end test in a network namespace of its own: the
# kernel only hands out unprivileged ICMP datagram sockets to groups in
# net.ipv4.ping_group_range, a per-namespace setting that is closed on this
# host. Inside the new namespace (loopback only) the test opens it, and the
# whole fabric runs there; the host's namespace and settings are untouched.
set -euo pipefail
BIN="$TEST_SRCDIR/$TEST_WORKSPACE/tests/dataplane_e2e_test"
# FERRY_REQUIRE_ICMP turns the test's "not permitted here" skip into a failure.
export FERRY_REQUIRE_ICMP=1
exec unshare --net bash -c '
  set -e
  ip link set lo up
  echo "0 2147483647" >/proc/sys/net/ipv4/ping_group_range
  exec "$0" --gtest_filter="*IcmpEcho*"
' "$BIN"
