// An asynchronous DNS resolver for backend discovery, over c-ares, with a thread of its own.
//
// The connector turns `dns://name:port` backends into the A and AAAA addresses of `name`, and
// `srv://_service._proto.name` backends into the addresses of each SRV target with the SRV
// record's port. Every answer carries the smallest TTL of the records it was built from, so the
// caller (BackendDiscovery) knows when to ask again.
//
// A c-ares channel is not thread-safe in c-ares 1.18 (Debian 12): the channel lives on the
// resolver's own thread, which runs a poll() loop over the channel's sockets; Resolve* calls
// from any thread queue a request and wake that thread. TTLs come from ares_parse_a_reply /
// ares_parse_aaaa_reply (their addrttls) and, for SRV, from the raw answer parsed with ldns
// (ares_parse_srv_reply has no TTLs).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"
#include "dataplane/socket_address.h"

namespace ferry::discovery {

class DnsResolver {
 public:
  struct Options {
    // "ip:port", "[v6]:port" or a bare "ip" (port 53) of the servers to ask, in order; empty:
    // the system's (/etc/resolv.conf, with its search domains). With explicit servers no search
    // domains are applied: names are asked as they are.
    std::vector<std::string> servers;
    // How long to wait for one server's answer to one try (at least 1 ms).
    absl::Duration timeout = absl::Seconds(2);
    // How many times each server is tried per query (at least 1).
    int tries = 2;
  };

  struct Answer {
    // Sorted (SocketAddress order: IPv4 before IPv6, then by bytes), no duplicates, every one
    // with the port of the request (dns://) or of its SRV record (srv://).
    std::vector<dataplane::SocketAddress> addresses;
    // The smallest TTL among the records used (SRV records and the targets' A/AAAA records).
    absl::Duration ttl;
  };

  using Callback = std::function<void(absl::StatusOr<Answer>)>;

  // Starts a resolver thread. INVALID_ARGUMENT for a server that is not an IP literal with an
  // optional port 1..65535, a timeout under 1 ms or tries < 1; INTERNAL when c-ares cannot be
  // initialized (e.g. no /etc/resolv.conf and no servers given is still fine: c-ares then asks
  // 127.0.0.1).
  static absl::StatusOr<std::unique_ptr<DnsResolver>> Create(Options options);

  // Cancels every pending request and joins the thread. Each request that had not finished gets
  // its `done` called with CANCELLED, on the resolver thread, before the destructor returns
  // (so callbacks may still use what they captured until then). Must not be called from a
  // `done` callback.
  ~DnsResolver();

  DnsResolver(const DnsResolver&) = delete;
  DnsResolver& operator=(const DnsResolver&) = delete;

  // Asks for the A and AAAA records of `name` (both at once) and calls `done` once, on the
  // resolver thread, with the addresses (port `port`; 0 is allowed, for ICMP backends whose
  // port is ignored) and the smallest TTL. Errors:
  //   NOT_FOUND      NXDOMAIN, or neither A nor AAAA records;
  //   UNAVAILABLE    a timeout, refused connection, SERVFAIL/REFUSED or a bad answer (if either
  //                  query fails this way the whole answer fails, so a set never shrinks on a
  //                  half answer);
  //   INVALID_ARGUMENT an empty name (or one c-ares cannot encode);
  //   CANCELLED      the resolver is being destroyed.
  // The message names the query and carries the c-ares error text. Any thread; `done` must not
  // block (it holds up every other query) and must not destroy the resolver.
  void ResolveHost(const std::string& name, uint16_t port, Callback done);

  // Asks for the SRV records of `name` (e.g. "_http._tcp.example.internal"), then for the A and
  // AAAA records of each target, and calls `done` once with every target's addresses, each with
  // its SRV record's port. Priority and weight are not used: every target is a backend (the
  // connector balances by consistent hashing and health). Targets whose names have no
  // addresses are left out; NOT_FOUND when no target has any (or the SRV name does not exist,
  // or its only record is the "." target of RFC 2782). At most kMaxSrvTargets targets are
  // followed (the first ones by name). Other errors and threading as ResolveHost.
  void ResolveSrv(const std::string& name, Callback done);

  static constexpr int kMaxSrvTargets = 64;

 private:
  struct Request {
    enum class Kind { kHost, kSrv } kind;
    std::string name;
    uint16_t port;
    Callback done;
  };
  class Channel;

  DnsResolver(std::unique_ptr<Channel> channel, UniqueFd wake_fd);

  void Enqueue(Request request);
  void Run();
  void Wake();

  const std::unique_ptr<Channel> channel_;  // Used on the resolver thread only.
  const UniqueFd wake_fd_;                  // eventfd: new requests, or stop.

  absl::Mutex mu_;
  std::deque<Request> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  std::thread thread_;
};

}  // namespace ferry::discovery
