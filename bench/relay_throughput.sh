#!/usr/bin/env bash
# Frames per second through ferry-relay, with 1 and 2 workers, for 64 B and
# 1400 B payloads, measured with ferry-loadgen (bench/loadgen.cc), which plays
# both the agent and the connector end so that the relay is measured alone.
#
#   bench/relay_throughput.sh [--duration S] [--reps N] [--flows N] [--rate FPS]
#                             [--senders N] [--keep]
#
#   --duration S  seconds each loadgen run sends (default 5, at most 60)
#   --reps N      repetitions of the whole grid, interleaved (default 3, at most 10);
#                 the table shows the median of the repetitions
#   --flows N     flows per run (default 256)
#   --rate FPS    frames/s the loadgen offers (default 0: as fast as it can)
#   --senders N   loadgen sender threads (default 1)
#   --keep        keep the work directory (PKI, logs, every JSON line)
#
# It builds with --config=opt, makes a dev PKI in a temporary directory, starts
# ferry-intermediate and then, for each worker count, a ferry-relay on loopback
# ports picked by the kernel (read from their ready files), runs the loadgen
# once per payload size, and stops the relay. It stops only the processes it
# started, by PID, however it exits. Loopback only; every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=5
REPS=3
FLOWS=256
RATE=0
SENDERS=1
KEEP=0
WORKERS_LIST=(1 2)
PAYLOADS=(64 1400)

usage() {
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=${2:?}; shift 2 ;;
    --reps) REPS=${2:?}; shift 2 ;;
    --flows) FLOWS=${2:?}; shift 2 ;;
    --rate) RATE=${2:?}; shift 2 ;;
    --senders) SENDERS=${2:?}; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h | --help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
done
for n in "$DURATION" "$REPS" "$FLOWS" "$SENDERS"; do
  if ! [[ "$n" =~ ^[1-9][0-9]*$ ]]; then
    echo "not a positive integer: $n" >&2
    exit 2
  fi
done
[ "$DURATION" -le 60 ] || { echo "--duration is at most 60" >&2; exit 2; }
# Each run opens one session, and an agent may hold 64 (the Intermediate's default).
[ "$REPS" -le 10 ] || { echo "--reps is at most 10" >&2; exit 2; }

echo "== Building (--config=opt)"
bazel build --config=opt //bench:ferry-loadgen //controlplane:ferry-intermediate \
  //dataplane:ferry-relay
BIN=$(bazel info --config=opt bazel-bin 2>/dev/null)
# ferryctl only makes the PKI, so its build config does not matter (and under
# -O2, GCC 12 stops cli/dev_pki.cc with a false -Wnonnull).
bazel build //cli:ferryctl
FERRYCTL="$(bazel info bazel-bin 2>/dev/null)/cli/ferryctl"
INTERMEDIATE="$BIN/controlplane/ferry-intermediate"
RELAY="$BIN/dataplane/ferry-relay"
LOADGEN="$BIN/bench/ferry-loadgen"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ferry-relay-throughput.XXXXXX")
PIDS=()

stop_pid() {  # pid: SIGTERM, then SIGKILL after 10 s
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "PID $pid ignored SIGTERM for 10 s; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local status=$? i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[$i]}"; done
  if [ "$KEEP" = 1 ] || [ "$status" -ne 0 ]; then
    echo "Work directory (PKI, logs, results): $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME BINARY ARGS...: starts it in the background with a ready file and
# waits (30 s at most) until the file is there. Sets LAST_PID.
start() {
  local name=$1 bin=$2 i
  shift 2
  rm -f "$WORK/$name.ready"
  mkdir -p "$WORK/logs"
  "$bin" --log_dir="$WORK/logs" --ready_file="$WORK/$name.ready" "$@" \
    >"$WORK/logs/$name.out" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
  for ((i = 0; i < 300; i++)); do
    [ -f "$WORK/$name.ready" ] && return 0
    kill -0 "$LAST_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "$name did not become ready; its output:" >&2
  tail -20 "$WORK/logs/$name.out" >&2 || true
  exit 1
}
ready_value() { sed -n "s/^$2=//p" "$WORK/$1.ready"; }

echo "== Dev PKI and Intermediate in $WORK"
PKI="$WORK/pki"
"$FERRYCTL" pki init --dir "$PKI" >/dev/null
issue() { "$FERRYCTL" pki issue --dir "$PKI" --tenant "$1" --role "$2" --name "$3" >/dev/null; }
issue ops intermediate intermediate
issue ops relay relay-1
issue bench connector loadgen
issue bench agent loadgen
start intermediate "$INTERMEDIATE" --listen=127.0.0.1:0 --admin_listen=127.0.0.1:0 \
  --dns_listen=127.0.0.1:0 --state_dir="$WORK/state" --ca_cert="$PKI/ca.crt" \
  --cert="$PKI/intermediate-ops-intermediate.crt" --key="$PKI/intermediate-ops-intermediate.key"
GRPC=$(ready_value intermediate grpc_address)

CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
CORES=$(nproc)
echo
echo "Machine: $CORES cores ($CPU_MODEL), Linux $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC')."
echo "Load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg) (anything else running skews the figures)."
echo "The $CORES cores are shared by the loadgen ($SENDERS sender thread(s) and a sink thread),"
echo "the relay's workers and the Intermediate: every figure below is for this whole machine."
echo "Each run: ${DURATION} s, $FLOWS flows, 1 session, rate $([ "$RATE" = 0 ] && echo 'unlimited (open loop)' || echo "$RATE frames/s")."
echo

RESULTS="$WORK/results.tsv"
: >"$RESULTS"
json_field() {  # json key: the number after "key":
  sed -n "s/.*\"$2\":\([-0-9.e+]*\).*/\1/p" <<<"$1"
}
for ((rep = 1; rep <= REPS; rep++)); do
  for workers in "${WORKERS_LIST[@]}"; do
    start relay "$RELAY" --intermediate="$GRPC" --workers="$workers" --listen=127.0.0.1:0 \
      --admin_listen=127.0.0.1:0 --name=relay-1 --ca_cert="$PKI/ca.crt" \
      --cert="$PKI/relay-ops-relay-1.crt" --key="$PKI/relay-ops-relay-1.key"
    relay_pid=$LAST_PID
    relay_admin=$(ready_value relay admin_address)
    for payload in "${PAYLOADS[@]}"; do
      out="$WORK/run-$rep-$workers-$payload.out"
      if ! "$LOADGEN" --intermediate="$GRPC" --ca_cert="$PKI/ca.crt" \
        --agent_cert="$PKI/agent-bench-loadgen.crt" --agent_key="$PKI/agent-bench-loadgen.key" \
        --connector_cert="$PKI/connector-bench-loadgen.crt" \
        --connector_key="$PKI/connector-bench-loadgen.key" \
        --payload="$payload" --flows="$FLOWS" --rate="$RATE" --senders="$SENDERS" \
        --duration="${DURATION}s" --relay_metrics="http://$relay_admin/metrics" \
        --relay_pid="$relay_pid" --json >"$out" 2>"$out.err"; then
        echo "ferry-loadgen failed (rep $rep, $workers workers, $payload B):" >&2
        cat "$out" "$out.err" >&2
        exit 1
      fi
      echo "rep $rep, $workers worker(s): $(head -1 "$out")"
      json=$(grep '^{' "$out")
      seconds=$(json_field "$json" seconds)
      relay_cpu=$(json_field "$json" relay_cpu_s)
      delivered=$(json_field "$json" delivered)
      # Relay CPU in % of a core, and frames delivered per second of relay CPU.
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$workers" "$payload" \
        "$(json_field "$json" sent_per_s)" "$(json_field "$json" delivered_per_s)" \
        "$(json_field "$json" loss_pct)" "$(json_field "$json" payload_gbit_per_s)" \
        "$(awk -v c="${relay_cpu:-0}" -v s="$seconds" 'BEGIN { printf "%.1f", 100 * c / s }')" \
        "$(awk -v c="${relay_cpu:-0}" -v d="$delivered" 'BEGIN { printf "%.0f", (c > 0 ? d / c : 0) }')" \
        >>"$RESULTS"
    done
    stop_pid "$relay_pid"
  done
done

# median COLUMN WORKERS PAYLOAD: the median of a results column over the repetitions.
median() {
  awk -F'\t' -v c="$1" -v w="$2" -v p="$3" '$1 == w && $2 == p { print $c }' "$RESULTS" |
    sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2];
      else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
echo
echo "Median of $REPS repetition(s):"
echo
echo "| workers | payload | sent/s | delivered/s | loss | Gbit/s (payload) | relay CPU | delivered per relay CPU-second |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
declare -A DELIVERED
for workers in "${WORKERS_LIST[@]}"; do
  for payload in "${PAYLOADS[@]}"; do
    DELIVERED[$workers,$payload]=$(median 4 "$workers" "$payload")
    awk -v w="$workers" -v p="$payload" -v s="$(median 3 "$workers" "$payload")" \
      -v d="${DELIVERED[$workers,$payload]}" -v l="$(median 5 "$workers" "$payload")" \
      -v g="$(median 6 "$workers" "$payload")" -v c="$(median 7 "$workers" "$payload")" \
      -v e="$(median 8 "$workers" "$payload")" \
      'BEGIN { printf "| %d | %d B | %.0f | %.0f | %.1f%% | %.3f | %.0f%% | %.0f |\n", w, p, s, d, l, g, c, e }'
  done
done
echo
echo "Ratios of delivered frames/s:"
for payload in "${PAYLOADS[@]}"; do
  awk -v p="$payload" -v a="${DELIVERED[2,$payload]}" -v b="${DELIVERED[1,$payload]}" \
    'BEGIN { printf "  2 workers / 1 worker at %d B: %.2f\n", p, (b > 0 ? a / b : 0) }'
done
for workers in "${WORKERS_LIST[@]}"; do
  awk -v w="$workers" -v a="${DELIVERED[$workers,64]}" -v b="${DELIVERED[$workers,1400]}" \
    'BEGIN { printf "  64 B / 1400 B with %d worker(s): %.2f\n", w, (b > 0 ? a / b : 0) }'
done
echo
echo "(relay CPU: 100% is one core; the kernel's loopback delivery is partly billed to the"
echo " sender's thread, so it is the relay's own work plus part of its socket I/O. Loss is"
echo " frames the relay did not deliver, dropped by the kernel when the relay's receive queue"
echo " overflows (the udp_rcvbuf_errors of each JSON line): an open loop offers more than the"
echo " relay can take on the CPU it gets.)"
