#include "bench/loadgen_report.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/unique_fd.h"
#include "dataplane/socket_address.h"

namespace ferry::bench {
namespace {

std::string CountsText(const ReasonCounts& counts) {
  if (counts.empty()) return "none";
  return absl::StrJoin(counts, " ", absl::PairFormatter("="));
}

// Reason names are snake_case metric labels: no character needs escaping.
std::string CountsJson(const ReasonCounts& counts) {
  std::vector<std::string> fields;
  for (const auto& [reason, count] : counts)
    fields.push_back(absl::StrCat("\"", reason, "\":", count));
  return absl::StrCat("{", absl::StrJoin(fields, ","), "}");
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

double LoadgenReport::sent_per_second() const {
  return seconds > 0 ? static_cast<double>(sent) / seconds : 0;
}

double LoadgenReport::delivered_per_second() const {
  return seconds > 0 ? static_cast<double>(delivered) / seconds : 0;
}

double LoadgenReport::loss_percent() const {
  if (sent == 0) return 0;
  return 100.0 * (static_cast<double>(sent) - static_cast<double>(delivered)) /
         static_cast<double>(sent);
}

double LoadgenReport::payload_gbit_per_second() const {
  return seconds > 0 ? static_cast<double>(payload_bytes) * 8 / seconds / 1e9 : 0;
}

std::string HumanLine(const LoadgenReport& r) {
  std::string line = absl::StrFormat(
      "payload %d B, %d flows, %d session%s, %d sender%s, %s, %.2f s: sent %d (%.0f/s), "
      "delivered %d (%.0f/s), loss %.2f%%, %.3f Gbit/s of payload; sink drops: %s",
      r.payload_size, r.flows, r.sessions, r.sessions == 1 ? "" : "s", r.senders,
      r.senders == 1 ? "" : "s",
      r.rate_limit > 0 ? absl::StrFormat("rate limit %.0f/s", r.rate_limit) : "no rate limit",
      r.seconds, r.sent, r.sent_per_second(), r.delivered, r.delivered_per_second(),
      r.loss_percent(), r.payload_gbit_per_second(), CountsText(r.sink_drops));
  if (r.send_failed > 0) absl::StrAppend(&line, "; send failures: ", r.send_failed);
  if (r.closes > 0) {
    absl::StrAppend(&line, "; relay closed flows ", r.closes, " times (", r.reopened, " reopened)");
  }
  if (r.relay_drops) absl::StrAppend(&line, "; relay drops: ", CountsText(*r.relay_drops));
  if (r.udp_rcvbuf_errors) {
    absl::StrAppend(&line, "; kernel UDP receive-buffer drops: ", *r.udp_rcvbuf_errors);
  }
  if (r.relay_cpu_seconds && r.seconds > 0) {
    absl::StrAppend(&line, absl::StrFormat("; relay CPU %.0f%% of a core",
                                           100 * *r.relay_cpu_seconds / r.seconds));
  }
  if (r.loadgen_cpu_seconds && r.seconds > 0) {
    absl::StrAppend(&line, absl::StrFormat("; loadgen CPU %.0f%% of a core",
                                           100 * *r.loadgen_cpu_seconds / r.seconds));
  }
  return line;
}

std::string JsonLine(const LoadgenReport& r) {
  std::string json = absl::StrFormat(
      "{\"payload_bytes\":%d,\"flows\":%d,\"sessions\":%d,\"senders\":%d,\"rate_limit\":%.0f,"
      "\"seconds\":%.4f,\"sent\":%d,\"send_failed\":%d,\"closes\":%d,\"reopened\":%d,"
      "\"delivered\":%d,\"payload_bytes_delivered\":%d,\"sent_per_s\":%.1f,"
      "\"delivered_per_s\":%.1f,\"loss_pct\":%.3f,\"payload_gbit_per_s\":%.4f,\"sink_drops\":%s",
      r.payload_size, r.flows, r.sessions, r.senders, r.rate_limit, r.seconds, r.sent,
      r.send_failed, r.closes, r.reopened, r.delivered, r.payload_bytes, r.sent_per_second(),
      r.delivered_per_second(), r.loss_percent(), r.payload_gbit_per_second(),
      CountsJson(r.sink_drops));
  if (r.relay_drops) absl::StrAppend(&json, ",\"relay_drops\":", CountsJson(*r.relay_drops));
  if (r.udp_rcvbuf_errors) absl::StrAppend(&json, ",\"udp_rcvbuf_errors\":", *r.udp_rcvbuf_errors);
  if (r.relay_cpu_seconds) {
    absl::StrAppend(&json, absl::StrFormat(",\"relay_cpu_s\":%.3f", *r.relay_cpu_seconds));
  }
  if (r.loadgen_cpu_seconds) {
    absl::StrAppend(&json, absl::StrFormat(",\"loadgen_cpu_s\":%.3f", *r.loadgen_cpu_seconds));
  }
  absl::StrAppend(&json, "}");
  return json;
}

ReasonCounts CountsDelta(const ReasonCounts& before, const ReasonCounts& after) {
  ReasonCounts delta;
  for (const auto& [reason, count] : after) {
    auto it = before.find(reason);
    const uint64_t base = it == before.end() ? 0 : it->second;
    if (count > base) delta[reason] = count - base;
  }
  return delta;
}

absl::StatusOr<std::string> HttpGetBody(const std::string& url, absl::Duration timeout) {
  absl::string_view rest = url;
  if (!absl::ConsumePrefix(&rest, "http://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", url, "\" is not an http:// URL (e.g. http://127.0.0.1:7481/metrics)"));
  }
  const size_t slash = rest.find('/');
  const absl::string_view host_port = rest.substr(0, slash);
  const std::string path = slash == absl::string_view::npos ? "/" : std::string(rest.substr(slash));
  absl::StatusOr<dataplane::SocketAddress> address =
      dataplane::ParseSocketAddress(host_port, /*resolve=*/true);
  if (!address.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(url, ": ", address.status().message()));
  }
  UniqueFd fd(socket(address->family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return absl::UnavailableError(absl::StrCat("socket: ", std::strerror(errno)));
  // Linux applies SO_SNDTIMEO to connect() too.
  const timeval limit = absl::ToTimeval(timeout);
  setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
  if (connect(fd.get(), address->get(), address->length) != 0) {
    return absl::UnavailableError(absl::StrCat("connect to ", url, ": ", std::strerror(errno)));
  }
  const std::string request =
      absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: ", host_port, "\r\nConnection: close\r\n\r\n");
  for (size_t sent = 0; sent < request.size();) {
    const ssize_t n = send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      return absl::UnavailableError(absl::StrCat("send to ", url, ": ", std::strerror(errno)));
    sent += static_cast<size_t>(n);
  }
  std::string reply;
  char buffer[16384];
  for (;;) {
    const ssize_t n = recv(fd.get(), buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      return absl::UnavailableError(absl::StrCat("read from ", url, ": ", std::strerror(errno)));
    if (n == 0) break;
    reply.append(buffer, static_cast<size_t>(n));
  }
  const size_t head_end = reply.find("\r\n\r\n");
  std::vector<absl::string_view> status_line =
      absl::StrSplit(absl::string_view(reply).substr(0, reply.find("\r\n")), ' ');
  int status = 0;
  if (head_end == std::string::npos || status_line.size() < 2 ||
      !absl::StartsWith(status_line[0], "HTTP/1.") || !absl::SimpleAtoi(status_line[1], &status)) {
    return absl::DataLossError(absl::StrCat(url, " answered something that is not HTTP"));
  }
  if (status != 200) {
    return absl::FailedPreconditionError(absl::StrCat("GET ", url, " answered ", status));
  }
  return reply.substr(head_end + 4);
}

ReasonCounts ParseCountsByReason(absl::string_view text, absl::string_view metric) {
  const std::string prefix = absl::StrCat(metric, "{reason=\"");
  ReasonCounts counts;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::ConsumePrefix(&line, prefix)) continue;
    // Reasons are snake_case: the value ends at the first quote, and only the
    // label set {reason="..."} counts.
    const size_t close = line.find('"');
    if (close == absl::string_view::npos || line.substr(close, 2) != "\"}") continue;
    double value = 0;
    if (!absl::SimpleAtod(absl::StripAsciiWhitespace(line.substr(close + 2)), &value)) continue;
    if (value >= 1) counts[std::string(line.substr(0, close))] = static_cast<uint64_t>(value);
  }
  return counts;
}

absl::StatusOr<uint64_t> ParseUdpRcvbufErrors(absl::string_view snmp) {
  // Two lines per protocol: "Udp: InDatagrams NoPorts ..." then "Udp: 1 2 ...".
  std::vector<absl::string_view> header;
  for (absl::string_view line : absl::StrSplit(snmp, '\n')) {
    if (!absl::ConsumePrefix(&line, "Udp:")) continue;
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (header.empty()) {
      header = fields;
      continue;
    }
    for (size_t i = 0; i < header.size() && i < fields.size(); ++i) {
      uint64_t value = 0;
      if (header[i] == "RcvbufErrors" && absl::SimpleAtoi(fields[i], &value)) return value;
    }
    break;
  }
  return absl::InvalidArgumentError("no Udp RcvbufErrors column in the /proc/net/snmp text");
}

absl::StatusOr<uint64_t> ReadUdpRcvbufErrors() {
  absl::StatusOr<std::string> text = ReadWholeFile("/proc/net/snmp");
  if (!text.ok()) return text.status();
  return ParseUdpRcvbufErrors(*text);
}

absl::StatusOr<double> ParseProcessCpuSeconds(absl::string_view stat, long ticks_per_second) {
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so the
  // fields are counted after the last ')'. utime and stime are fields 14 and
  // 15 of the line, so the 12th and 13th after the comm.
  const size_t close = stat.rfind(')');
  if (close == absl::string_view::npos || ticks_per_second <= 0) {
    return absl::InvalidArgumentError("not a /proc/<pid>/stat line");
  }
  std::vector<absl::string_view> fields =
      absl::StrSplit(stat.substr(close + 1), ' ', absl::SkipWhitespace());
  uint64_t utime = 0, stime = 0;
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) ||
      !absl::SimpleAtoi(fields[12], &stime)) {
    return absl::InvalidArgumentError("a /proc/<pid>/stat line without utime and stime");
  }
  return static_cast<double>(utime + stime) / static_cast<double>(ticks_per_second);
}

absl::StatusOr<double> ReadProcessCpuSeconds(pid_t pid) {
  absl::StatusOr<std::string> text = ReadWholeFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!text.ok()) return text.status();
  return ParseProcessCpuSeconds(*text, sysconf(_SC_CLK_TCK));
}

}  // namespace ferry::bench
