# shellcheck shell=bash disable=SC2034  # FIXTURE_* variables are read by the sourcing test.
# A real Intermediate for shell tests, sourced (not run) by tests/*_test.sh.
#
# Gives a test a dev PKI made by ferryctl and a ferry-intermediate process on
# loopback ports picked by the kernel, and stops every process the test
# started when the test exits, however it exits. All files live under
# $TEST_TMPDIR; every wait is bounded.
#
# Functions (each returns non-zero, after a message on stderr, on failure;
# tests run with `set -e`, so a failure ends the test):
#   fixture_init                  checks the runfiles; call first.
#   fixture_pki TENANT            makes $FIXTURE_PKI with ca.crt, the
#                                 Intermediate's certificate (role intermediate,
#                                 SANs localhost and 127.0.0.1) and an admin
#                                 certificate admin-TENANT-ops.{crt,key}.
#   fixture_start_intermediate    starts ferry-intermediate with that PKI and
#                                 sets FIXTURE_GRPC_ADDRESS and
#                                 FIXTURE_ADMIN_ADDRESS (host:port) once it is
#                                 ready (60 s at most).
#   fixture_track_pid PID         stops PID (SIGTERM, then SIGKILL after 10 s)
#                                 when the test exits.
#   fixture_wait SECONDS WHAT CMD...
#                                 runs CMD every 0.2 s until it succeeds; fails
#                                 naming WHAT after SECONDS.
#   fixture_free_port             prints a loopback TCP port that was free a
#                                 moment ago (the caller retries on a clash).
#   fail MESSAGE                  prints "FAIL: MESSAGE" and exits 1.

FIXTURE_DIR="${TEST_TMPDIR:?run under bazel test (TEST_TMPDIR is not set)}/fixture"
FIXTURE_PKI="$FIXTURE_DIR/pki"
FIXTURE_PIDS=()

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

fixture_runfile() {
  local path="${TEST_SRCDIR:?}/${TEST_WORKSPACE:?}/$1"
  [[ -e "$path" ]] || fail "runfile $1 is missing (is it in the test's data?)"
  echo "$path"
}

fixture_init() {
  FERRYCTL="$(fixture_runfile cli/ferryctl)"
  FERRY_INTERMEDIATE="$(fixture_runfile controlplane/ferry-intermediate)"
  mkdir -p "$FIXTURE_DIR"
  trap fixture_cleanup EXIT
}

fixture_track_pid() {
  FIXTURE_PIDS+=("$1")
}

# Stops what the test started, newest first, by PID only.
fixture_cleanup() {
  local status=$?
  local i pid waited
  for ((i = ${#FIXTURE_PIDS[@]} - 1; i >= 0; i--)); do
    pid="${FIXTURE_PIDS[$i]}"
    kill -0 "$pid" 2>/dev/null || continue
    kill -TERM "$pid" 2>/dev/null || true
    for ((waited = 0; waited < 50; waited++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "fixture: PID $pid ignored SIGTERM for 10 s; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  if [[ $status -ne 0 ]]; then
    local log
    for log in "$FIXTURE_DIR"/*.log; do
      [[ -f "$log" ]] || continue
      echo "----- last lines of $log -----" >&2
      tail -n 30 "$log" >&2
    done
  fi
  exit "$status"
}

fixture_wait() {
  local seconds="$1" what="$2"
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    if ((SECONDS >= deadline)); then
      echo "FAIL: timed out after ${seconds}s waiting for $what" >&2
      return 1
    fi
    sleep 0.2
  done
}

fixture_free_port() {
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

fixture_pki() {
  local tenant="$1"
  "$FERRYCTL" pki init --dir "$FIXTURE_PKI" >"$FIXTURE_DIR/pki.out" 2>&1 ||
    fail "ferryctl pki init failed: $(cat "$FIXTURE_DIR/pki.out")"
  "$FERRYCTL" pki issue --dir "$FIXTURE_PKI" --tenant "$tenant" --role intermediate \
    --name main >>"$FIXTURE_DIR/pki.out" 2>&1 ||
    fail "ferryctl pki issue (intermediate) failed: $(cat "$FIXTURE_DIR/pki.out")"
  "$FERRYCTL" pki issue --dir "$FIXTURE_PKI" --tenant "$tenant" --role admin \
    --name ops >>"$FIXTURE_DIR/pki.out" 2>&1 ||
    fail "ferryctl pki issue (admin) failed: $(cat "$FIXTURE_DIR/pki.out")"
  FIXTURE_INTERMEDIATE_CERT="$FIXTURE_PKI/intermediate-$tenant-main"
  FIXTURE_ADMIN_CERT="$FIXTURE_PKI/admin-$tenant-ops"
}

fixture_ready_file_has_addresses() {
  grep -q '^grpc_address=' "$FIXTURE_DIR/intermediate.ready" 2>/dev/null &&
    grep -q '^admin_address=' "$FIXTURE_DIR/intermediate.ready"
}

fixture_start_intermediate() {
  local ready="$FIXTURE_DIR/intermediate.ready"
  rm -f "$ready"
  "$FERRY_INTERMEDIATE" \
    --listen=127.0.0.1:0 --admin_listen=127.0.0.1:0 --dns_listen=127.0.0.1:0 --ready_file="$ready" \
    --ca_cert="$FIXTURE_PKI/ca.crt" --cert="$FIXTURE_INTERMEDIATE_CERT.crt" \
    --key="$FIXTURE_INTERMEDIATE_CERT.key" --state_dir="$FIXTURE_DIR/state" \
    >"$FIXTURE_DIR/intermediate.log" 2>&1 &
  FIXTURE_INTERMEDIATE_PID=$!
  fixture_track_pid "$FIXTURE_INTERMEDIATE_PID"
  fixture_wait 60 "ferry-intermediate's ready file" fixture_ready_file_has_addresses || {
    kill -0 "$FIXTURE_INTERMEDIATE_PID" 2>/dev/null || fail "ferry-intermediate exited at start"
    fail "ferry-intermediate did not become ready"
  }
  FIXTURE_GRPC_ADDRESS="$(sed -n 's/^grpc_address=//p' "$ready")"
  FIXTURE_ADMIN_ADDRESS="$(sed -n 's/^admin_address=//p' "$ready")"
  echo "fixture: ferry-intermediate (PID $FIXTURE_INTERMEDIATE_PID) gRPC on" \
    "$FIXTURE_GRPC_ADDRESS, admin HTTP on $FIXTURE_ADMIN_ADDRESS"
}
