#include "tests/harness/metrics_scrape.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace ferry::harness {
namespace {

// Waits until `fd` is ready for `events` or `deadline` passes.
bool WaitFor(int fd, short events, absl::Time deadline) {
  while (true) {
    const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (ms <= 0) return false;
    pollfd p{fd, events, 0};
    const int r = poll(&p, 1, static_cast<int>(std::min<int64_t>(ms, 1000)));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return false;
  }
}

struct Sample {
  std::string name;
  MetricLabels labels;
  double value = 0;
};

// Parses one exposition line; false for comments, blanks and junk.
bool ParseSample(absl::string_view line, Sample* sample) {
  line = absl::StripAsciiWhitespace(line);
  if (line.empty() || line[0] == '#') return false;
  size_t i = 0;
  while (i < line.size() && line[i] != '{' && line[i] != ' ' && line[i] != '\t') ++i;
  sample->name = std::string(line.substr(0, i));
  sample->labels.clear();
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (true) {
      while (i < line.size() && (line[i] == ' ' || line[i] == ',')) ++i;
      if (i >= line.size()) return false;
      if (line[i] == '}') {
        ++i;
        break;
      }
      const size_t eq = line.find('=', i);
      if (eq == absl::string_view::npos || eq + 1 >= line.size() || line[eq + 1] != '"') {
        return false;
      }
      std::string key(absl::StripAsciiWhitespace(line.substr(i, eq - i)));
      std::string value;
      size_t j = eq + 2;
      for (; j < line.size() && line[j] != '"'; ++j) {
        if (line[j] == '\\' && j + 1 < line.size()) {
          ++j;
          value += line[j] == 'n' ? '\n' : line[j];
        } else {
          value += line[j];
        }
      }
      if (j >= line.size()) return false;
      sample->labels[key] = value;
      i = j + 1;
    }
  }
  absl::string_view rest = absl::StripLeadingAsciiWhitespace(line.substr(i));
  const absl::string_view value = rest.substr(0, rest.find_first_of(" \t"));
  if (value == "+Inf") {
    sample->value = std::numeric_limits<double>::infinity();
  } else if (value == "-Inf") {
    sample->value = -std::numeric_limits<double>::infinity();
  } else if (value == "NaN") {
    sample->value = std::nan("");
  } else if (!absl::SimpleAtod(value, &sample->value)) {
    return false;
  }
  return true;
}

double ParseBound(const std::string& le) {
  if (le == "+Inf") return std::numeric_limits<double>::infinity();
  double bound = 0;
  return absl::SimpleAtod(le, &bound) ? bound : std::nan("");
}

}  // namespace

absl::StatusOr<HttpGetResult> HttpGet(const std::string& address, const std::string& path,
                                      absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  const size_t colon = address.rfind(':');
  int port = 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port) ||
      port <= 0 || port > 65535 ||
      inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("\"", address, "\" is not an IPv4 ip:port"));
  }
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};

  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno != EINPROGRESS) {
      return absl::UnavailableError(absl::StrCat("connect ", address, ": ", std::strerror(errno)));
    }
    if (!WaitFor(fd, POLLOUT, deadline)) {
      return absl::DeadlineExceededError(absl::StrCat("connect ", address, " timed out"));
    }
    int error = 0;
    socklen_t len = sizeof(error);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
    if (error != 0) {
      return absl::UnavailableError(absl::StrCat("connect ", address, ": ", std::strerror(error)));
    }
  }
  const std::string request =
      absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: ", address, "\r\nConnection: close\r\n\r\n");
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!WaitFor(fd, POLLOUT, deadline)) return absl::DeadlineExceededError("send timed out");
    } else {
      return absl::UnavailableError(absl::StrCat("send: ", std::strerror(errno)));
    }
  }
  std::string response;
  char buffer[16384];
  while (true) {
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n > 0) {
      response.append(buffer, static_cast<size_t>(n));
    } else if (n == 0) {
      break;
    } else if (errno == EAGAIN || errno == EINTR) {
      if (!WaitFor(fd, POLLIN, deadline)) {
        return absl::DeadlineExceededError(absl::StrCat("GET ", path, " timed out"));
      }
    } else {
      return absl::UnavailableError(absl::StrCat("recv: ", std::strerror(errno)));
    }
  }
  const size_t head_end = response.find("\r\n\r\n");
  std::vector<absl::string_view> status_line =
      absl::StrSplit(absl::string_view(response).substr(0, response.find("\r\n")), ' ');
  HttpGetResult result;
  if (head_end == std::string::npos || status_line.size() < 2 ||
      !absl::StartsWith(status_line[0], "HTTP/1.") ||
      !absl::SimpleAtoi(status_line[1], &result.status)) {
    return absl::DataLossError(absl::StrCat("malformed HTTP response from ", address, ": \"",
                                            response.substr(0, 200), "\""));
  }
  result.body = response.substr(head_end + 4);
  return result;
}

absl::StatusOr<std::string> FetchMetrics(const std::string& admin_address) {
  absl::StatusOr<HttpGetResult> result = HttpGet(admin_address, "/metrics");
  if (!result.ok()) return result.status();
  if (result->status != 200) {
    return absl::FailedPreconditionError(
        absl::StrCat("GET /metrics answered ", result->status, ": ", result->body));
  }
  return std::move(result->body);
}

std::optional<double> MetricValue(absl::string_view text, absl::string_view name,
                                  const MetricLabels& labels) {
  Sample sample;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (ParseSample(line, &sample) && sample.name == name && sample.labels == labels) {
      return sample.value;
    }
  }
  return std::nullopt;
}

double MetricValueOr0(absl::string_view text, absl::string_view name, const MetricLabels& labels) {
  return MetricValue(text, name, labels).value_or(0);
}

absl::StatusOr<double> WaitForMetricAtLeast(const std::string& admin_address,
                                            absl::string_view name, const MetricLabels& labels,
                                            double at_least, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    absl::StatusOr<std::string> text = FetchMetrics(admin_address);
    if (!text.ok()) return text.status();
    const double value = MetricValueOr0(*text, name, labels);
    if (value >= at_least) return value;
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(name, " is ", value, " after ",
                                                      absl::FormatDuration(timeout),
                                                      "; waited for at least ", at_least));
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
}

std::vector<std::pair<double, double>> HistogramBuckets(absl::string_view text,
                                                        absl::string_view name,
                                                        const MetricLabels& labels) {
  const std::string bucket_name = absl::StrCat(name, "_bucket");
  std::vector<std::pair<double, double>> buckets;
  Sample sample;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!ParseSample(line, &sample) || sample.name != bucket_name) continue;
    auto le = sample.labels.find("le");
    if (le == sample.labels.end()) continue;
    const double bound = ParseBound(le->second);
    sample.labels.erase(le);
    if (sample.labels == labels && !std::isnan(bound)) buckets.emplace_back(bound, sample.value);
  }
  std::sort(buckets.begin(), buckets.end());
  return buckets;
}

std::vector<std::pair<double, double>> SubtractBuckets(
    const std::vector<std::pair<double, double>>& after,
    const std::vector<std::pair<double, double>>& before) {
  std::vector<std::pair<double, double>> diff;
  for (const auto& [bound, count] : after) {
    double earlier = 0;
    for (const auto& [b, c] : before) {
      if (b == bound) earlier = c;
    }
    diff.emplace_back(bound, count - earlier);
  }
  return diff;
}

std::optional<double> BucketQuantile(double q,
                                     const std::vector<std::pair<double, double>>& buckets) {
  if (buckets.empty() || buckets.back().second <= 0) return std::nullopt;
  const double total = buckets.back().second;
  const double rank = q * total;
  double lower_bound = 0;
  double lower_count = 0;
  for (const auto& [bound, count] : buckets) {
    if (count >= rank) {
      if (std::isinf(bound)) return lower_bound;  // Highest finite bound.
      if (count == lower_count) return bound;
      return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count);
    }
    lower_bound = bound;
    lower_count = count;
  }
  return lower_bound;
}

}  // namespace ferry::harness
