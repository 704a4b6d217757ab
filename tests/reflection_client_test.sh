#!/usr/bin/env bash
# A real third-party gRPC client (Node's @grpc/grpc-js with the npm package
# grpc-js-reflection-client) uses the Intermediate with nothing but
# certificates: it lists the services by server reflection, loads
# ferry.v1.Admin's descriptors by reflection, registers a service from a JSON
# object, checks the error codes of bad registrations, lists services, reads the
# status and calls grpc.health.v1.Health/Check. See tests/node/reflection_client.js
# for every check.
#
# The npm packages are those of tests/node/package-lock.json, installed by
# scripts/setup.sh with `npm ci` outside the repository (so Bazel never sees a
# node_modules). The directory is, first found:
#   $FERRY_NODE_TESTS_DIR (pass it with --test_env=FERRY_NODE_TESTS_DIR=...),
#   ${XDG_CACHE_HOME:-$HOME/.cache}/ferry/node-tests,
#   <the user's home from the passwd database>/.cache/ferry/node-tests
# (Bazel gives tests a reduced environment, so the last one is the usual hit).
# The test fails, naming setup.sh, when that install is missing or was made
# from another lock file.
set -euo pipefail

# shellcheck source=tests/intermediate_fixture.sh
source "${TEST_SRCDIR:?}/${TEST_WORKSPACE:?}/tests/intermediate_fixture.sh"

command -v node >/dev/null || fail "node is not installed; run scripts/setup.sh"

find_node_tests_dir() {
  local home candidates=()
  [[ -n "${FERRY_NODE_TESTS_DIR:-}" ]] && candidates+=("$FERRY_NODE_TESTS_DIR")
  [[ -n "${XDG_CACHE_HOME:-}" ]] && candidates+=("$XDG_CACHE_HOME/ferry/node-tests")
  [[ -n "${HOME:-}" ]] && candidates+=("$HOME/.cache/ferry/node-tests")
  home="$(getent passwd "$(id -u)" | cut -d: -f6)"
  [[ -n "$home" ]] && candidates+=("$home/.cache/ferry/node-tests")
  local dir
  for dir in "${candidates[@]}"; do
    if [[ -d "$dir/node_modules" ]]; then
      echo "$dir"
      return 0
    fi
  done
  fail "no npm install of tests/node found (looked in: ${candidates[*]}); run scripts/setup.sh"
}

NODE_TESTS_DIR="$(find_node_tests_dir)"
lock="$(fixture_runfile tests/node/package-lock.json)"
want_hash="$(sha256sum "$lock" | cut -d' ' -f1)"
have_hash="$(cat "$NODE_TESTS_DIR/.package-lock.sha256" 2>/dev/null || true)"
[[ "$have_hash" == "$want_hash" ]] ||
  fail "$NODE_TESTS_DIR was installed from another tests/node/package-lock.json; run scripts/setup.sh"
echo "node modules: $NODE_TESTS_DIR/node_modules (lock $want_hash)"

fixture_init
fixture_pki acme
fixture_start_intermediate

NODE_PATH="$NODE_TESTS_DIR/node_modules" node --no-deprecation \
  "$(fixture_runfile tests/node/reflection_client.js)" test \
  --address "$FIXTURE_GRPC_ADDRESS" --ca "$FIXTURE_PKI/ca.crt" \
  --cert "$FIXTURE_ADMIN_CERT.crt" --key "$FIXTURE_ADMIN_CERT.key" \
  --tenant acme --connector edge-1 ||
  fail "the reflection client's checks failed (see above)"
echo "PASS: a third-party reflection client used the Intermediate with certificates only"
