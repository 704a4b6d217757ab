// What one ferry-loadgen run measured, rendered as one human line and as one
// JSON line (for scripts: bench/relay_throughput.sh), and the small readers of
// the counters that explain where frames went: the relay's drops by reason
// from its /metrics, the UDP receive-buffer drops of /proc/net/snmp, and a
// process's CPU time from /proc/<pid>/stat.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace ferry::bench {

// Counts by a metric label (a drop reason): only the non-zero ones.
using ReasonCounts = std::map<std::string, uint64_t>;

struct LoadgenReport {
  // What was asked for.
  size_t payload_size = 0;
  uint32_t flows = 0;
  size_t sessions = 0;
  int senders = 0;
  double rate_limit = 0;  // frames/s; 0: as fast as possible
  // How long the senders ran, measured.
  double seconds = 0;
  // Agent end.
  uint64_t sent = 0;         // frames the kernel accepted
  uint64_t send_failed = 0;  // frames sendmmsg refused
  uint64_t closes = 0;       // CLOSE frames the relay sent back (it dropped a flow)
  uint64_t reopened = 0;     // frames that opened a flow again after such a CLOSE
  // Connector end.
  uint64_t delivered = 0;      // frames that authenticated at the sink
  uint64_t payload_bytes = 0;  // their payload bytes
  ReasonCounts sink_drops;     // frames the sink refused, by dataplane::DropReason name
  // Optional observations (absent: not asked for, or not readable).
  std::optional<ReasonCounts> relay_drops;    // ferry_relay_drops_total during the run
  std::optional<uint64_t> udp_rcvbuf_errors;  // kernel UDP receive-buffer drops, whole host
  std::optional<double> relay_cpu_seconds;    // CPU the relay used during the run
  std::optional<double> loadgen_cpu_seconds;  // CPU this process used during the run

  // Frames per second (0 when seconds is 0).
  double sent_per_second() const;
  double delivered_per_second() const;
  // 100 * (sent - delivered) / sent; 0 when nothing was sent. Negative only if
  // frames sent before the run were delivered during it.
  double loss_percent() const;
  // Payload bits delivered per second, in 10^9.
  double payload_gbit_per_second() const;
};

// One line, e.g. "payload 64 B, 256 flows, 1 session, 1 sender, 5.00 s: sent
// 1000000 (200000/s), delivered 990000 (198000/s), loss 1.00%, 0.101 Gbit/s of
// payload; sink drops: none; relay drops: unknown_flow=3; ...". No newline.
std::string HumanLine(const LoadgenReport& report);

// One JSON object on one line (no newline), with every field of the report
// and the derived rates: "payload_bytes", "flows", "sessions", "senders",
// "rate_limit", "seconds", "sent", "send_failed", "closes", "reopened",
// "delivered", "payload_bytes_delivered", "sent_per_s", "delivered_per_s",
// "loss_pct", "payload_gbit_per_s", "sink_drops" (object); and, when present,
// "relay_drops" (object), "udp_rcvbuf_errors", "relay_cpu_s", "loadgen_cpu_s".
std::string JsonLine(const LoadgenReport& report);

// `after` minus `before`, reason by reason (a reason missing from `before`
// counts as 0), keeping the positive differences only.
ReasonCounts CountsDelta(const ReasonCounts& before, const ReasonCounts& after);

// The body of an HTTP GET of `url` ("http://host:port/path", host an IP
// literal or a name), over HTTP/1.0 on a blocking socket, reading to EOF.
// Blocks up to `timeout` per step (connect, send, each read). INVALID_ARGUMENT
// for a URL of another form; UNAVAILABLE when the connection fails or times
// out; FAILED_PRECONDITION for a status other than 200; DATA_LOSS for a reply
// that is not HTTP.
absl::StatusOr<std::string> HttpGetBody(const std::string& url, absl::Duration timeout);

// The samples of counter `metric` labelled with reason only (as
// `metric{reason="x"} 12`) in Prometheus text, by reason; zeros left out.
ReasonCounts ParseCountsByReason(absl::string_view text, absl::string_view metric);

// RcvbufErrors of the "Udp:" lines of /proc/net/snmp text. INVALID_ARGUMENT
// when there is no Udp header/value pair with that column.
absl::StatusOr<uint64_t> ParseUdpRcvbufErrors(absl::string_view snmp);
// Reads /proc/net/snmp: the read error, or ParseUdpRcvbufErrors's.
absl::StatusOr<uint64_t> ReadUdpRcvbufErrors();

// utime + stime of a /proc/<pid>/stat line, in seconds, with `ticks_per_second`
// clock ticks per second (> 0). INVALID_ARGUMENT for a line that is not one.
absl::StatusOr<double> ParseProcessCpuSeconds(absl::string_view stat, long ticks_per_second);
// Reads /proc/<pid>/stat: NOT_FOUND when the process is gone, or the parse error.
absl::StatusOr<double> ReadProcessCpuSeconds(pid_t pid);

}  // namespace ferry::bench
