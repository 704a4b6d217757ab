#!/usr/bin/env bash
# Installs every Debian package Ferry needs to build, test and run its
# quickstart, then the npm packages of tests/node (third-party gRPC clients the
# tests use) with `npm ci` into a cache directory outside the repository.
# Idempotent: installs only what is missing, runs `apt-get update` at most
# once, re-runs `npm ci` only when tests/node/package-lock.json changed, and
# prints what it installed.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  # Build: Bazel from Debian, with no downloads (see WORKSPACE).
  bazel-bootstrap bazel-platforms g++ pkg-config clang-format python3
  # Libraries, wrapped as @system//:<name> by third_party/system.
  libgrpc++-dev protobuf-compiler-grpc protobuf-compiler libprotobuf-dev
  libabsl-dev libssl-dev libgoogle-glog-dev libgflags-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  prometheus-cpp-dev libyaml-cpp-dev libc-ares-dev libldns-dev
  # Tests and the quickstart: real peers and clients.
  bind9-dnsutils curl dnsmasq-base iproute2 iputils-ping netcat-openbsd procps prometheus
  systemd
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages already installed"
else
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
  echo "setup: installed ${missing[*]}"
fi

# npm packages for tests/node, kept out of the work tree so that Bazel never
# globs a node_modules. tests/reflection_client_test.sh finds them here and
# checks the lock file hash recorded beside them.
NODE_TESTS_DIR="${FERRY_NODE_TESTS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry/node-tests}"
if ! command -v npm >/dev/null; then
  echo "setup: npm is missing (Node.js 18 or later with npm is needed for tests/node)" >&2
  exit 1
fi
lock_hash="$(sha256sum tests/node/package-lock.json | cut -d' ' -f1)"
if [ -d "$NODE_TESTS_DIR/node_modules" ] &&
  [ "$(cat "$NODE_TESTS_DIR/.package-lock.sha256" 2>/dev/null)" = "$lock_hash" ]; then
  echo "setup: npm packages of tests/node already installed in $NODE_TESTS_DIR"
else
  echo "setup: npm ci of tests/node into $NODE_TESTS_DIR"
  mkdir -p "$NODE_TESTS_DIR"
  rm -f "$NODE_TESTS_DIR/.package-lock.sha256"
  cp tests/node/package.json tests/node/package-lock.json "$NODE_TESTS_DIR/"
  (cd "$NODE_TESTS_DIR" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  echo "$lock_hash" >"$NODE_TESTS_DIR/.package-lock.sha256"
  echo "setup: installed the npm packages of tests/node"
fi
