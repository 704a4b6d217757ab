#!/usr/bin/env bash
# //:release holds every binary, unit, example config and doc; the binaries
# run; and every systemd unit passes `systemd-analyze verify` (with ExecStart
# pointed at the extracted binaries, since nothing is installed under /usr/bin).
set -euo pipefail
TARBALL="$TEST_SRCDIR/$TEST_WORKSPACE/ferry-release.tar.gz"
WORK="$(mktemp -d "${TEST_TMPDIR:-/tmp}/release.XXXXXX")"
tar xzf "$TARBALL" -C "$WORK"
failures=0
expect() { [ -e "$WORK/ferry/$1" ] || { echo "missing from the release: $1"; failures=$((failures + 1)); }; }
for bin in ferry-intermediate ferry-relay ferry-connector ferry-agent ferryctl; do
  expect "bin/$bin"
  [ -x "$WORK/ferry/bin/$bin" ] || { echo "not executable: bin/$bin"; failures=$((failures + 1)); }
done
for unit in intermediate relay connector agent; do expect "systemd/ferry-$unit.service"; done
for config in intermediate relay connector agent; do expect "config/$config.yaml"; done
for doc in README.md API.md METRICS.md LIFECYCLE.md; do expect "doc/$doc"; done
"$WORK/ferry/bin/ferryctl" version >/dev/null || { echo "ferryctl version failed"; failures=$((failures + 1)); }

if command -v systemd-analyze >/dev/null; then
  mkdir -p "$WORK/units"
  for unit in "$WORK"/ferry/systemd/*.service; do
    sed "s|/usr/bin/|$WORK/ferry/bin/|" "$unit" >"$WORK/units/$(basename "$unit")"
  done
  # verify prints problems on stderr; "ferry" not being a user here is not one of them.
  if ! out=$(cd "$WORK/units" && systemd-analyze verify ./*.service 2>&1); then
    echo "systemd-analyze verify failed:"; echo "$out"; failures=$((failures + 1))
  elif echo "$out" | grep -v -e "ferry" -e '^$' | grep -q .; then
    echo "systemd-analyze verify warned:"; echo "$out"; failures=$((failures + 1))
  fi
else
  echo "systemd-analyze is not installed (scripts/setup.sh installs systemd)"; failures=$((failures + 1))
fi
if [ "$failures" -ne 0 ]; then echo "$failures problems"; exit 1; fi
echo "release OK: $(tar tzf "$TARBALL" | wc -l) entries"
