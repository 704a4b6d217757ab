#include "discovery/dns_resolver.h"

// ldns/common.h defines bool, true and false as macros unless <stdbool.h> came first.
// clang-format off
#include <stdbool.h>
#include <ldns/ldns.h>
// clang-format on

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/mutex_lock.h"
#include "glog/logging.h"

namespace ferry::discovery {
namespace {

using dataplane::SocketAddress;

// The most addresses taken from one A or AAAA answer (ares_parse_*_reply fills a caller-sized
// array). A TCP answer could hold a few thousand; a backend set that large is a mistake.
constexpr int kMaxAddressesPerAnswer = 1024;

void InitCaresOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    const int status = ares_library_init(ARES_LIB_INIT_ALL);
    CHECK_EQ(status, ARES_SUCCESS) << "ares_library_init: " << ares_strerror(status);
  });
}

// The status for a c-ares error code `status` from the query described by `what`.
absl::Status CaresError(int status, const std::string& what) {
  const std::string message = absl::StrCat(what, ": ", ares_strerror(status));
  switch (status) {
    case ARES_ENOTFOUND:
    case ARES_ENODATA:
      return absl::NotFoundError(message);
    case ARES_ECANCELLED:
    case ARES_EDESTRUCTION:
      return absl::CancelledError(message);
    case ARES_EBADNAME:
      return absl::InvalidArgumentError(message);
    default:
      return absl::UnavailableError(message);
  }
}

// Orders addresses by family, then address bytes, then port.
bool AddressLess(const SocketAddress& a, const SocketAddress& b) {
  if (a.family() != b.family()) return a.family() < b.family();
  if (a.family() == AF_INET) {
    const auto* x = reinterpret_cast<const sockaddr_in*>(&a.storage);
    const auto* y = reinterpret_cast<const sockaddr_in*>(&b.storage);
    const int c = std::memcmp(&x->sin_addr, &y->sin_addr, sizeof(in_addr));
    if (c != 0) return c < 0;
    return ntohs(x->sin_port) < ntohs(y->sin_port);
  }
  const auto* x = reinterpret_cast<const sockaddr_in6*>(&a.storage);
  const auto* y = reinterpret_cast<const sockaddr_in6*>(&b.storage);
  const int c = std::memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(in6_addr));
  if (c != 0) return c < 0;
  return ntohs(x->sin6_port) < ntohs(y->sin6_port);
}

void SortAndDedupe(std::vector<SocketAddress>* addresses) {
  std::sort(addresses->begin(), addresses->end(), AddressLess);
  addresses->erase(std::unique(addresses->begin(), addresses->end()), addresses->end());
}

SocketAddress FromIpv4(const in_addr& ip, uint16_t port) {
  sockaddr_in in = {};
  in.sin_family = AF_INET;
  in.sin_addr = ip;
  in.sin_port = htons(port);
  return SocketAddress::From(reinterpret_cast<const sockaddr*>(&in), sizeof(in));
}

SocketAddress FromIpv6(const ares_in6_addr& ip, uint16_t port) {
  sockaddr_in6 in6 = {};
  in6.sin6_family = AF_INET6;
  static_assert(sizeof(in6.sin6_addr) == sizeof(ip), "in6_addr layout");
  std::memcpy(&in6.sin6_addr, &ip, sizeof(ip));
  in6.sin6_port = htons(port);
  return SocketAddress::From(reinterpret_cast<const sockaddr*>(&in6), sizeof(in6));
}

absl::Duration TtlSeconds(int ttl) { return absl::Seconds(std::max(ttl, 0)); }

// One "A and AAAA of a name" lookup: two queries, one answer. Owned by itself; deleted after
// `done` ran.
class HostLookup {
 public:
  static void Start(ares_channel channel, std::string name, uint16_t port,
                    DnsResolver::Callback done) {
    auto* lookup = new HostLookup(std::move(name), port, std::move(done));
    // Both queries are issued before either callback can run (c-ares only calls back from
    // ares_process_fd or on immediate failure, which is counted the same way).
    ares_search(channel, lookup->name_.c_str(), ns_c_in, ns_t_a, &HostLookup::OnReply<ares_addrttl>,
                lookup);
    ares_search(channel, lookup->name_.c_str(), ns_c_in, ns_t_aaaa,
                &HostLookup::OnReply<ares_addr6ttl>, lookup);
  }

 private:
  HostLookup(std::string name, uint16_t port, DnsResolver::Callback done)
      : name_(std::move(name)), port_(port), done_(std::move(done)) {}

  // ares_search callback for the A (Record = ares_addrttl) or AAAA (ares_addr6ttl) query.
  template <typename Record>
  static void OnReply(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
    auto* lookup = static_cast<HostLookup*>(arg);
    if (status == ARES_SUCCESS) {
      std::vector<Record> records(kMaxAddressesPerAnswer);
      int count = kMaxAddressesPerAnswer;
      status = ParseReply(abuf, alen, records.data(), &count);
      if (status == ARES_SUCCESS) {
        for (int i = 0; i < count; ++i) {
          lookup->addresses_.push_back(ToAddress(records[i], lookup->port_));
          lookup->ttl_ = std::min(lookup->ttl_, TtlSeconds(records[i].ttl));
        }
      }
    }
    lookup->Finish(status, RecordType(static_cast<Record*>(nullptr)));
  }

  static int ParseReply(const unsigned char* abuf, int alen, ares_addrttl* out, int* count) {
    return ares_parse_a_reply(abuf, alen, nullptr, out, count);
  }
  static int ParseReply(const unsigned char* abuf, int alen, ares_addr6ttl* out, int* count) {
    return ares_parse_aaaa_reply(abuf, alen, nullptr, out, count);
  }
  static SocketAddress ToAddress(const ares_addrttl& r, uint16_t port) {
    return FromIpv4(r.ipaddr, port);
  }
  static SocketAddress ToAddress(const ares_addr6ttl& r, uint16_t port) {
    return FromIpv6(r.ip6addr, port);
  }
  static const char* RecordType(ares_addrttl*) { return "A"; }
  static const char* RecordType(ares_addr6ttl*) { return "AAAA"; }

  // Records one query's outcome; the second one to finish answers and deletes the lookup.
  void Finish(int status, const char* type) {
    if (status != ARES_SUCCESS) {
      absl::Status error = CaresError(status, absl::StrCat(type, " query for ", name_));
      // NOT_FOUND for one family is normal (a v4-only name); any other error fails the answer,
      // and cancellation wins over everything.
      if (absl::IsNotFound(error)) {
        not_found_ = std::move(error);
      } else if (error_.ok() || absl::IsCancelled(error)) {
        error_ = std::move(error);
      }
    }
    if (--pending_ > 0) return;
    DnsResolver::Callback done = std::move(done_);
    absl::StatusOr<DnsResolver::Answer> result;
    if (!error_.ok()) {
      result = std::move(error_);
    } else if (addresses_.empty()) {
      result = absl::NotFoundError(
          absl::StrCat("no A or AAAA records for ", name_,
                       not_found_.ok() ? "" : absl::StrCat(" (", not_found_.message(), ")")));
    } else {
      SortAndDedupe(&addresses_);
      result = DnsResolver::Answer{std::move(addresses_), ttl_};
    }
    delete this;
    done(std::move(result));
  }

  const std::string name_;
  const uint16_t port_;
  DnsResolver::Callback done_;
  int pending_ = 2;
  std::vector<SocketAddress> addresses_;
  absl::Duration ttl_ = absl::InfiniteDuration();
  absl::Status error_;
  absl::Status not_found_;
};

struct LdnsPktFree {
  void operator()(ldns_pkt* pkt) const { ldns_pkt_free(pkt); }
};
using PktPtr = std::unique_ptr<ldns_pkt, LdnsPktFree>;

// One SRV lookup: the SRV query, then a HostLookup per target. Owned by itself; deleted after
// `done` ran.
class SrvLookup {
 public:
  static void Start(ares_channel channel, std::string name, DnsResolver::Callback done) {
    auto* lookup = new SrvLookup(channel, std::move(name), std::move(done));
    ares_search(channel, lookup->name_.c_str(), ns_c_in, ns_t_srv, &SrvLookup::OnSrv, lookup);
  }

 private:
  struct Target {
    std::string host;
    uint16_t port;
    bool operator<(const Target& o) const {
      return std::tie(host, port) < std::tie(o.host, o.port);
    }
  };

  SrvLookup(ares_channel channel, std::string name, DnsResolver::Callback done)
      : channel_(channel), name_(std::move(name)), done_(std::move(done)) {}

  static void OnSrv(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
    auto* lookup = static_cast<SrvLookup*>(arg);
    if (status != ARES_SUCCESS) {
      lookup->Answer(CaresError(status, absl::StrCat("SRV query for ", lookup->name_)));
      return;
    }
    std::set<Target> targets;
    absl::Status parsed = lookup->ParseTargets(abuf, alen, &targets);
    if (!parsed.ok()) {
      lookup->Answer(std::move(parsed));
      return;
    }
    if (targets.empty()) {
      lookup->Answer(absl::NotFoundError(
          absl::StrCat("no SRV targets for ", lookup->name_, " (no records, or only \".\")")));
      return;
    }
    if (targets.size() > DnsResolver::kMaxSrvTargets) {
      LOG(WARNING) << "SRV " << lookup->name_ << " has " << targets.size()
                   << " targets; following the first " << DnsResolver::kMaxSrvTargets;
      targets.erase(std::next(targets.begin(), DnsResolver::kMaxSrvTargets), targets.end());
    }
    // A target lookup may finish at once (and the last one deletes `lookup`): nothing of
    // `lookup` is read after the last Start.
    const ares_channel channel = lookup->channel_;
    lookup->pending_ = static_cast<int>(targets.size());
    for (const Target& target : targets) {
      HostLookup::Start(channel, target.host, target.port,
                        [lookup](absl::StatusOr<DnsResolver::Answer> answer) {
                          lookup->OnTarget(std::move(answer));
                        });
    }
  }

  // Reads the SRV records of the answer section (ldns: c-ares' SRV parser drops the TTLs).
  absl::Status ParseTargets(const unsigned char* abuf, int alen, std::set<Target>* targets) {
    ldns_pkt* raw = nullptr;
    const ldns_status status = ldns_wire2pkt(&raw, abuf, static_cast<size_t>(alen));
    PktPtr pkt(raw);
    if (status != LDNS_STATUS_OK || pkt == nullptr) {
      return absl::UnavailableError(absl::StrCat(
          "SRV answer for ", name_, " does not parse: ", ldns_get_errorstr_by_id(status)));
    }
    const ldns_rr_list* answers = ldns_pkt_answer(pkt.get());
    for (size_t i = 0; answers != nullptr && i < ldns_rr_list_rr_count(answers); ++i) {
      const ldns_rr* rr = ldns_rr_list_rr(answers, i);
      if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_SRV || ldns_rr_rd_count(rr) != 4) continue;
      ttl_ = std::min(ttl_, absl::Seconds(ldns_rr_ttl(rr)));
      const uint16_t port = ldns_rdf2native_int16(ldns_rr_rdf(rr, 2));
      char* host = ldns_rdf2str(ldns_rr_rdf(rr, 3));
      if (host == nullptr) {
        return absl::UnavailableError(absl::StrCat("SRV answer for ", name_, " has a bad target"));
      }
      std::string target(host);
      std::free(host);                           // ldns allocates with malloc.
      if (target == "." || port == 0) continue;  // RFC 2782: "." means no service here.
      targets->insert(Target{std::move(target), port});
    }
    return absl::OkStatus();
  }

  void OnTarget(absl::StatusOr<DnsResolver::Answer> answer) {
    if (answer.ok()) {
      addresses_.insert(addresses_.end(), answer->addresses.begin(), answer->addresses.end());
      ttl_ = std::min(ttl_, answer->ttl);
    } else if (!absl::IsNotFound(answer.status()) &&
               (error_.ok() || absl::IsCancelled(answer.status()))) {
      error_ = answer.status();
    }
    if (--pending_ > 0) return;
    if (!error_.ok()) {
      Answer(std::move(error_));
    } else if (addresses_.empty()) {
      Answer(
          absl::NotFoundError(absl::StrCat("no SRV target of ", name_, " has A or AAAA records")));
    } else {
      SortAndDedupe(&addresses_);
      Answer(DnsResolver::Answer{std::move(addresses_), ttl_});
    }
  }

  void Answer(absl::StatusOr<DnsResolver::Answer> result) {
    DnsResolver::Callback done = std::move(done_);
    delete this;
    done(std::move(result));
  }

  const ares_channel channel_;
  const std::string name_;
  DnsResolver::Callback done_;
  int pending_ = 0;
  std::vector<SocketAddress> addresses_;
  absl::Duration ttl_ = absl::InfiniteDuration();
  absl::Status error_;
};

// Parses one Options::servers entry into a c-ares server node.
absl::StatusOr<ares_addr_port_node> ParseServer(const std::string& text) {
  ares_addr_port_node node = {};
  node.udp_port = node.tcp_port = 53;
  if (inet_pton(AF_INET, text.c_str(), &node.addr.addr4) == 1) {
    node.family = AF_INET;
    return node;
  }
  if (inet_pton(AF_INET6, text.c_str(), &node.addr.addr6) == 1) {
    node.family = AF_INET6;
    return node;
  }
  absl::StatusOr<SocketAddress> address = dataplane::ParseSocketAddress(text, /*resolve=*/false);
  if (!address.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("DNS server \"", text,
                     "\" is not an IP address with an optional port (\"10.0.0.2\", "
                     "\"10.0.0.2:5353\", \"[fd00::2]:53\"): ",
                     address.status().message()));
  }
  node.family = address->family();
  if (node.family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&address->storage);
    node.addr.addr4 = in->sin_addr;
    node.udp_port = node.tcp_port = ntohs(in->sin_port);
  } else {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&address->storage);
    std::memcpy(&node.addr.addr6, &in6->sin6_addr, sizeof(node.addr.addr6));
    node.udp_port = node.tcp_port = ntohs(in6->sin6_port);
  }
  return node;
}

}  // namespace

// The c-ares channel, destroyed by its owner's thread.
class DnsResolver::Channel {
 public:
  explicit Channel(ares_channel channel) : channel_(channel) {}
  ~Channel() { Destroy(); }
  ares_channel get() const { return channel_; }
  void Destroy() {
    if (channel_ != nullptr) ares_destroy(channel_);
    channel_ = nullptr;
  }

 private:
  ares_channel channel_;
};

absl::StatusOr<std::unique_ptr<DnsResolver>> DnsResolver::Create(Options options) {
  if (options.timeout < absl::Milliseconds(1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "DnsResolver timeout is ", absl::FormatDuration(options.timeout), "; use at least 1ms"));
  }
  if (options.tries < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("DnsResolver tries is ", options.tries, "; use at least 1"));
  }
  std::vector<ares_addr_port_node> servers;
  for (const std::string& text : options.servers) {
    absl::StatusOr<ares_addr_port_node> node = ParseServer(text);
    if (!node.ok()) return node.status();
    servers.push_back(*node);
  }
  for (size_t i = 0; i + 1 < servers.size(); ++i) servers[i].next = &servers[i + 1];

  InitCaresOnce();
  ares_options ares_opts = {};
  int optmask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
  ares_opts.timeout = static_cast<int>(
      std::min<int64_t>(absl::ToInt64Milliseconds(options.timeout), 24 * 3600 * 1000));
  ares_opts.tries = options.tries;
  if (!servers.empty()) {
    // Explicit servers: names are asked as they are, not with resolv.conf's search domains.
    optmask |= ARES_OPT_DOMAINS;
    ares_opts.domains = nullptr;
    ares_opts.ndomains = 0;
  }
  ares_channel raw = nullptr;
  int status = ares_init_options(&raw, &ares_opts, optmask);
  if (status != ARES_SUCCESS) {
    return absl::InternalError(absl::StrCat("ares_init_options: ", ares_strerror(status)));
  }
  auto channel = std::make_unique<Channel>(raw);
  if (!servers.empty()) {
    status = ares_set_servers_ports(channel->get(), servers.data());
    if (status != ARES_SUCCESS) {
      return absl::InvalidArgumentError(absl::StrCat(
          "DNS servers ", absl::StrJoin(options.servers, ","), ": ", ares_strerror(status)));
    }
  }
  UniqueFd wake(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake) {
    return absl::InternalError(absl::StrCat("eventfd: ", std::strerror(errno)));
  }
  return std::unique_ptr<DnsResolver>(new DnsResolver(std::move(channel), std::move(wake)));
}

DnsResolver::DnsResolver(std::unique_ptr<Channel> channel, UniqueFd wake_fd)
    : channel_(std::move(channel)), wake_fd_(std::move(wake_fd)) {
  thread_ = std::thread([this] { Run(); });
}

DnsResolver::~DnsResolver() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  Wake();
  thread_.join();
}

void DnsResolver::ResolveHost(const std::string& name, uint16_t port, Callback done) {
  Enqueue(Request{Request::Kind::kHost, name, port, std::move(done)});
}

void DnsResolver::ResolveSrv(const std::string& name, Callback done) {
  Enqueue(Request{Request::Kind::kSrv, name, 0, std::move(done)});
}

void DnsResolver::Enqueue(Request request) {
  {
    MutexLock lock(&mu_);
    queue_.push_back(std::move(request));
  }
  Wake();
}

void DnsResolver::Wake() {
  const uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: the thread will wake anyway.
  (void)!write(wake_fd_.get(), &one, sizeof(one));
}

void DnsResolver::Run() {
  const ares_channel channel = channel_->get();
  for (;;) {
    std::deque<Request> requests;
    bool stopping;
    {
      MutexLock lock(&mu_);
      requests.swap(queue_);
      stopping = stopping_;
    }
    if (stopping) {
      for (Request& request : requests) {
        request.done(absl::CancelledError(
            absl::StrCat("DNS query for ", request.name, ": the resolver is shutting down")));
      }
      break;
    }
    for (Request& request : requests) {
      if (request.name.empty()) {
        request.done(absl::InvalidArgumentError("DNS query with an empty name"));
      } else if (request.kind == Request::Kind::kHost) {
        HostLookup::Start(channel, std::move(request.name), request.port, std::move(request.done));
      } else {
        SrvLookup::Start(channel, std::move(request.name), std::move(request.done));
      }
    }

    ares_socket_t sockets[ARES_GETSOCK_MAXNUM];
    const int bits = ares_getsock(channel, sockets, ARES_GETSOCK_MAXNUM);
    pollfd fds[1 + ARES_GETSOCK_MAXNUM];
    int count = 0;
    fds[count++] = pollfd{wake_fd_.get(), POLLIN, 0};
    for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
      short events = 0;
      if (ARES_GETSOCK_READABLE(bits, i)) events |= POLLIN;
      if (ARES_GETSOCK_WRITABLE(bits, i)) events |= POLLOUT;
      if (events != 0) fds[count++] = pollfd{sockets[i], events, 0};
    }
    timeval tv = {};
    const timeval* next = ares_timeout(channel, nullptr, &tv);
    const int timeout_ms =
        next == nullptr ? -1 : static_cast<int>(next->tv_sec * 1000 + (next->tv_usec + 999) / 1000);
    const int ready = poll(fds, count, timeout_ms);
    if (ready < 0) {
      PCHECK(errno == EINTR) << "poll in DnsResolver";
      continue;
    }
    if (fds[0].revents != 0) {
      uint64_t value;
      (void)!read(wake_fd_.get(), &value, sizeof(value));
    }
    bool processed = false;
    for (int i = 1; i < count; ++i) {
      if (fds[i].revents == 0) continue;
      const bool readable = (fds[i].revents & (POLLIN | POLLERR | POLLHUP)) != 0;
      const bool writable = (fds[i].revents & POLLOUT) != 0;
      ares_process_fd(channel, readable ? fds[i].fd : ARES_SOCKET_BAD,
                      writable ? fds[i].fd : ARES_SOCKET_BAD);
      processed = true;
    }
    // Expires timed-out tries (ares_process_fd with sockets does that as well).
    if (!processed) ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  }

  // Every lookup in flight gets ARES_ECANCELLED (-> CANCELLED); requests that callbacks queue
  // meanwhile are answered CANCELLED below, until none are left.
  ares_cancel(channel);
  channel_->Destroy();
  for (;;) {
    std::deque<Request> requests;
    {
      MutexLock lock(&mu_);
      requests.swap(queue_);
    }
    if (requests.empty()) break;
    for (Request& request : requests) {
      request.done(absl::CancelledError(
          absl::StrCat("DNS query for ", request.name, ": the resolver is shutting down")));
    }
  }
}

}  // namespace ferry::discovery
