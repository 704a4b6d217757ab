#!/usr/bin/env bash
# Installs every Debian package Ferry needs to build, test and run its
# quickstart. Idempotent: installs only what is missing, runs `apt-get update`
# at most once, and prints what it installed.
set -euo pipefail

PACKAGES=(
  # Build: Bazel from Debian, with no downloads (see WORKSPACE).
  bazel-bootstrap bazel-platforms g++ pkg-config clang-format python3
  # Libraries, wrapped as @system//:<name> by third_party/system.
  libgrpc++-dev protobuf-compiler-grpc protobuf-compiler libprotobuf-dev
  libabsl-dev libssl-dev libgoogle-glog-dev libgflags-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  prometheus-cpp-dev libyaml-cpp-dev libc-ares-dev libldns-dev
  # Tests and the quickstart: real peers and clients.
  bind9-dnsutils curl iproute2 procps
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "setup: installed ${missing[*]}"
