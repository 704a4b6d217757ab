#!/usr/bin/env bash
# Builds and runs every test, prints the log tail of each failing test, and
# ends with one line "N passed, M failed" counting test cases (from the
# test.xml files Bazel writes). Exits non-zero when anything failed or no test
# ran. Extra arguments go to `bazel test` (e.g. --config=asan).
set -uo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

start=$(date +%s)
targets=$(bazel query 'tests(//...)' 2>/dev/null)
summary=$(mktemp)
trap 'rm -f "$summary"' EXIT
bazel test --keep_going "$@" //... 2>&1 | tee "$summary"
bazel_rc=${PIPESTATUS[0]}
echo "test: bazel test finished with exit code $bazel_rc in $(( $(date +%s) - start ))s"

testlogs=$(bazel info bazel-testlogs "$@" 2>/dev/null)

# The quickstart is a README command too: run it for real (not under
# sanitizer configs, whose binaries are not what users run).
quickstart_rc=-1  # not run
if [ $# -eq 0 ]; then
  scripts/quickstart_check.sh
  quickstart_rc=$?
fi

python3 - "$testlogs" "$bazel_rc" "$summary" "$quickstart_rc" $targets <<'PY'
import os, re, sys
import xml.etree.ElementTree as ET

testlogs, bazel_rc, summary = sys.argv[1], int(sys.argv[2]), sys.argv[3]
quickstart_rc, targets = int(sys.argv[4]), sys.argv[5:]
# Bazel's own verdict per target; a test.xml is trusted only for targets that
# ran (or were cached) in this invocation, never a stale one.
status = {}
with open(summary, errors="replace") as f:
    for line in f:
        m = re.match(r"^(//\S+)\s+(?:\(cached\) )?(PASSED|FAILED TO BUILD|FAILED|TIMEOUT|NO STATUS|FLAKY|SKIPPED|INCOMPLETE)", line)
        if m:
            status[m.group(1)] = m.group(2)
passed = failed = skipped = 0
failing_logs = []
for target in targets:
    rel = target.lstrip("/").replace(":", "/")
    xml_path = os.path.join(testlogs, rel, "test.xml")
    log_path = os.path.join(testlogs, rel, "test.log")
    verdict = status.get(target, "NO STATUS")
    if verdict not in ("PASSED", "FAILED", "FLAKY"):
        failed += 1
        failing_logs.append(("%s (%s)" % (target, verdict), log_path))
        continue
    try:
        root = ET.parse(xml_path).getroot()
    except (OSError, ET.ParseError):
        # No result: the test did not build or did not run.
        failed += 1
        failing_logs.append((target + " (no test.xml: did not build or run)", log_path))
        continue
    cases = list(root.iter("testcase"))
    target_failed = False
    if not cases or verdict == "FAILED":
        # A failed target whose XML shows no failing case (a crash, a timeout)
        # still counts once.
        if not any(c.find("failure") is not None or c.find("error") is not None for c in cases):
            failed += 1
            target_failed = True
    for case in cases:
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
            target_failed = True
        elif case.get("status") == "notrun" or case.get("result") == "skipped" \
                or case.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
    if target_failed:
        failing_logs.append((target, log_path))

for target, log in failing_logs:
    print("=" * 78)
    print("FAILED: %s" % target)
    try:
        with open(log, errors="replace") as f:
            lines = f.readlines()
        sys.stdout.write("".join(lines[-60:]))
    except OSError:
        print("(no log at %s)" % log)
if quickstart_rc == 0:
    passed += 1
elif quickstart_rc > 0:
    failed += 1
    print("FAILED: scripts/quickstart_check.sh (see its output above)")
if bazel_rc != 0 and failed == 0:
    # The build broke outside any test (or a test timed out without XML).
    failed = 1
    print("bazel test failed (exit %d) without a failing test case; see the output above" % bazel_rc)
line = "%d passed, %d failed" % (passed, failed)
if skipped:
    line += ", %d skipped" % skipped
print(line)
sys.exit(0 if failed == 0 and passed > 0 else 1)
PY
