#!/usr/bin/env bash
# Runs the ICMP health-check case of lifecycle_e2e_test in a network namespace
# of its own, where the test may take a backend address away and give it back:
# 10.77.0.2 sits on a dummy interface (ferry-hc) that exists only in this
# namespace, and unprivileged ICMP sockets are opened to every group there
# (net.ipv4.ping_group_range is per namespace). The host is untouched.
set -euo pipefail
BIN="$TEST_SRCDIR/$TEST_WORKSPACE/tests/lifecycle_e2e_test"
export FERRY_LIFECYCLE_NETNS=1
exec unshare --net bash -c '
  set -e
  ip link set lo up
  ip link add ferry-hc type dummy
  ip link set ferry-hc up
  ip addr add 10.77.0.2/32 dev ferry-hc
  echo "0 2147483647" >/proc/sys/net/ipv4/ping_group_range
  exec "$0" --gtest_filter="*IcmpChecker*"
' "$BIN"
