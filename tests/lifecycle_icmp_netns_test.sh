#!/usr/bin/env bash
# Runs the ICMP health-check case of lifecycle_e2e_test in a network namespace
# of its own, where the test may take a backend address away and give it back:
# 10.77.0.2 sits on this namespace's own loopback interface, and unprivileged ICMP sockets are opened to every group there
# (net.ipv4.ping_group_range is per namespace). The host is untouched.
set -euo pipefail
BIN="$TEST_SRCDIR/$TEST_WORKSPACE/tests/lifecycle_e2e_test"
export FERRY_LIFECYCLE_NETNS=1
exec unshare --net bash -c '
  set -e
  ip link set lo up
  ip addr add 10.77.0.2/32 dev lo
  echo "0 2147483647" >/proc/sys/net/ipv4/ping_group_range
  exec "$0" --gtest_filter="*IcmpChecker*"
' "$BIN"
