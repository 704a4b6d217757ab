#include "tests/backends/udp_flows.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/listen_address.h"
#include "tests/backends/pattern.h"

namespace ferry::backends {
namespace {

constexpr size_t kMaxForeignSamples = 5;
constexpr size_t kMaxDatagram = 65536;

// A nonzero random token, so replies from an earlier set never match this one.
std::string RandomRun() {
  std::random_device device;
  return absl::StrFormat("run-%08x%08x", device(), device());
}

// Parses "f=<digits>"-style tokens.
bool ParseField(absl::string_view token, absl::string_view key, uint64_t* value) {
  if (token.substr(0, key.size()) != key) return false;
  return absl::SimpleAtoi(token.substr(key.size()), value);
}

}  // namespace

struct UdpFlowSet::Flow {
  int fd = -1;
  UdpFlowSpec spec;
  UdpFlowStats stats;
  uint64_t next_seq = 0;       // the next new datagram's number
  uint64_t goal = 0;           // next_seq at the end of the current exchange
  std::vector<bool> answered;  // by seq
  bool in_flight = false;
  uint64_t in_flight_seq = 0;
  std::string in_flight_datagram;
  int attempts = 0;
  absl::Time last_send;
};

void UdpFlowStats::Add(const UdpFlowStats& other) {
  sent += other.sent;
  answered += other.answered;
  retries += other.retries;
  duplicates += other.duplicates;
  foreign += other.foreign;
  for (const auto& [prefix, count] : other.answered_by_prefix) answered_by_prefix[prefix] += count;
  for (const std::string& sample : other.foreign_samples) {
    if (foreign_samples.size() < kMaxForeignSamples) foreign_samples.push_back(sample);
  }
}

UdpFlowSet::UdpFlowSet(std::string run, int epoll_fd) : run_(std::move(run)), epoll_fd_(epoll_fd) {}

UdpFlowSet::~UdpFlowSet() {
  for (Flow& flow : flows_) {
    if (flow.fd >= 0) close(flow.fd);
  }
  close(epoll_fd_);
}

absl::StatusOr<std::unique_ptr<UdpFlowSet>> UdpFlowSet::Open(std::vector<UdpFlowSpec> flows) {
  const int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) {
    return absl::ErrnoToStatus(errno, "epoll_create1 for the UDP flows");
  }
  std::unique_ptr<UdpFlowSet> set(new UdpFlowSet(RandomRun(), epoll_fd));
  set->flows_.resize(flows.size());
  for (size_t i = 0; i < flows.size(); ++i) {
    Flow& flow = set->flows_[i];
    flow.spec = std::move(flows[i]);
    if (flow.spec.allowed_prefixes.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("flow ", i, " allows no reply prefix; use {\"\"} for a plain echo"));
    }
    std::string host;
    uint16_t port = 0;
    if (absl::Status s = ParseHostPort(flow.spec.target, PortRule::kNonZero, &host, &port);
        !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("flow ", i, " target \"", flow.spec.target, "\": ", s.message()));
    }
    sockaddr_in target{};
    target.sin_family = AF_INET;
    target.sin_port = htons(port);
    if (inet_pton(AF_INET, host.c_str(), &target.sin_addr) != 1) {
      return absl::InvalidArgumentError(absl::StrCat("flow ", i, " target \"", flow.spec.target,
                                                     "\": the host must be an IPv4 literal"));
    }
    flow.fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (flow.fd < 0) {
      if (errno == EMFILE || errno == ENFILE) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "socket for flow ", i, ": ", std::strerror(errno), " (raise RLIMIT_NOFILE)"));
      }
      return absl::ErrnoToStatus(errno, absl::StrCat("socket for flow ", i));
    }
    // Connected: the kernel delivers only the target's datagrams to the socket.
    if (connect(flow.fd, reinterpret_cast<const sockaddr*>(&target), sizeof(target)) != 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("connect flow ", i, " to ", flow.spec.target));
    }
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = i;
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, flow.fd, &event) != 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("epoll_ctl for flow ", i));
    }
  }
  return set;
}

size_t UdpFlowSet::size() const { return flows_.size(); }

const UdpFlowStats& UdpFlowSet::flow(size_t i) const { return flows_.at(i).stats; }

UdpFlowStats UdpFlowSet::Total() const {
  UdpFlowStats total;
  for (const Flow& flow : flows_) total.Add(flow.stats);
  return total;
}

std::string UdpFlowSet::local_address(size_t i) const {
  sockaddr_in local{};
  socklen_t size = sizeof(local);
  if (getsockname(flows_.at(i).fd, reinterpret_cast<sockaddr*>(&local), &size) != 0) return "";
  char host[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &local.sin_addr, host, sizeof(host));
  return absl::StrCat(host, ":", ntohs(local.sin_port));
}

std::string UdpFlowSet::Datagram(size_t index, uint64_t seq, size_t padding) const {
  std::string datagram = absl::StrCat(run_, " f=", index, " s=", seq, " p=", padding, " ");
  datagram += PatternBytes(index * 1000003 + seq, padding);
  return datagram;
}

bool UdpFlowSet::Send(Flow& flow, std::string* error) {
  flow.last_send = absl::Now();
  ++flow.attempts;
  const ssize_t n =
      send(flow.fd, flow.in_flight_datagram.data(), flow.in_flight_datagram.size(), MSG_DONTWAIT);
  if (n >= 0) return true;
  // A full buffer or an ICMP refusal from an earlier send is a lost datagram.
  if (errno == EAGAIN || errno == ENOBUFS || errno == ECONNREFUSED || errno == EINTR) return true;
  *error = absl::StrCat("send to ", flow.spec.target, ": ", std::strerror(errno));
  return false;
}

void UdpFlowSet::OnReply(size_t index, absl::string_view reply) {
  Flow& flow = flows_[index];
  auto foreign = [&flow, reply] {
    ++flow.stats.foreign;
    if (flow.stats.foreign_samples.size() < kMaxForeignSamples) {
      flow.stats.foreign_samples.push_back(absl::CHexEscape(reply.substr(0, 120)));
    }
  };
  const size_t at = reply.find(run_);
  if (at == absl::string_view::npos) return foreign();
  const std::string prefix(reply.substr(0, at));
  const absl::string_view rest = reply.substr(at);
  std::vector<absl::string_view> tokens = absl::StrSplit(rest, absl::MaxSplits(' ', 4));
  uint64_t f = 0;
  uint64_t seq = 0;
  uint64_t padding = 0;
  if (tokens.size() != 5 || !ParseField(tokens[1], "f=", &f) ||
      !ParseField(tokens[2], "s=", &seq) || !ParseField(tokens[3], "p=", &padding) ||
      padding > kMaxDatagram) {
    return foreign();
  }
  if (f != index || seq >= flow.next_seq || rest != Datagram(index, seq, padding)) {
    return foreign();
  }
  const std::vector<std::string>& allowed = flow.spec.allowed_prefixes;
  if (std::find(allowed.begin(), allowed.end(), prefix) == allowed.end()) return foreign();
  if (flow.answered[seq]) {
    ++flow.stats.duplicates;
    return;
  }
  flow.answered[seq] = true;
  ++flow.stats.answered;
  ++flow.stats.answered_by_prefix[prefix];
  if (flow.in_flight && flow.in_flight_seq == seq) {
    flow.in_flight = false;
    --in_flight_;
  }
}

absl::Status UdpFlowSet::Exchange(const UdpExchangeOptions& options) {
  const absl::Time deadline = absl::Now() + options.timeout;
  const int max_attempts = std::max(options.max_attempts, 1);
  const size_t max_in_flight = std::max<size_t>(options.max_in_flight, 1);
  for (Flow& flow : flows_) {
    flow.in_flight = false;  // What an earlier, timed-out exchange left is given up.
    flow.goal = flow.next_seq + static_cast<uint64_t>(std::max(options.datagrams_per_flow, 0));
  }
  in_flight_ = 0;
  std::vector<epoll_event> events(256);
  std::vector<char> buffer(kMaxDatagram);
  std::string error;
  while (true) {
    const absl::Time now = absl::Now();
    bool done = true;
    for (Flow& flow : flows_) {
      if (flow.in_flight && now - flow.last_send >= options.retry_after) {
        if (flow.attempts < max_attempts) {
          ++flow.stats.retries;
          if (!Send(flow, &error)) return absl::InternalError(error);
        } else {
          flow.in_flight = false;  // Lost.
          --in_flight_;
        }
      }
      if (!flow.in_flight && flow.next_seq < flow.goal && in_flight_ < max_in_flight) {
        flow.in_flight = true;
        ++in_flight_;
        flow.in_flight_seq = flow.next_seq++;
        flow.answered.push_back(false);
        flow.in_flight_datagram = Datagram(static_cast<size_t>(&flow - flows_.data()),
                                           flow.in_flight_seq, options.padding);
        flow.attempts = 0;
        ++flow.stats.sent;
        if (!Send(flow, &error)) return absl::InternalError(error);
      }
      if (flow.in_flight || flow.next_seq < flow.goal) done = false;
    }
    if (done) return absl::OkStatus();
    if (now >= deadline) {
      const UdpFlowStats total = Total();
      return absl::DeadlineExceededError(
          absl::StrCat("UDP exchange on ", flows_.size(), " flows not done after ",
                       absl::FormatDuration(options.timeout), ": ", total.answered, " of ",
                       total.sent, " datagrams answered, ", in_flight_, " awaiting a reply"));
    }
    const int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), 5);
    if (n < 0 && errno != EINTR) return absl::ErrnoToStatus(errno, "epoll_wait");
    for (int e = 0; e < n; ++e) {
      const size_t index = static_cast<size_t>(events[e].data.u64);
      while (true) {
        const ssize_t size = recv(flows_[index].fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
        if (size >= 0) {
          OnReply(index, absl::string_view(buffer.data(), static_cast<size_t>(size)));
          continue;
        }
        if (errno == EAGAIN || errno == EINTR) break;
        if (errno == ECONNREFUSED) continue;  // ICMP for an earlier send; the retry covers it.
        return absl::InternalError(
            absl::StrCat("recv on flow ", index, ": ", std::strerror(errno)));
      }
    }
  }
}

}  // namespace ferry::backends
