// The Intermediate's DNS server: answers `<service>.<tenant>.<zone>` with the service's VIP, so
// that agents in intercept mode (and anything else pointed at the Intermediate) can resolve
// services by name. Authoritative for one zone (default "ferry.internal"), no recursion, no
// zone transfers, no DNSSEC. The DNS wire format is read and written by ldns (Debian's libldns);
// this file only decides what to answer.
//
// Answers (every response echoes the query's ID, RD and CD bits and its question; RA is 0):
//  - A (or ANY) in class IN (or ANY) for a name the lookup knows: NOERROR, AA, one A record with
//    the VIP and Options::ttl.
//  - Any other type for such a name: NOERROR, AA, no answer (NODATA), the zone's SOA in the
//    authority section for negative caching (RFC 2308).
//  - The zone apex: its SOA for SOA (or ANY) queries, NODATA with the SOA otherwise.
//  - `<tenant>.<zone>` (a valid tenant label): NODATA with the SOA. The name may be the parent of
//    services (an empty non-terminal), and NXDOMAIN there would tell resolvers that follow RFC
//    8020 (or minimise query names, RFC 9156) that no service below it exists either.
//  - Any other name in the zone (unknown service, labels that are not valid Ferry names, more
//    labels than `<service>.<tenant>`): NXDOMAIN, AA, the SOA.
//  - Names outside the zone, classes other than IN and ANY, AXFR and IXFR: REFUSED.
//  - A header shorter than 12 bytes, or a response (QR=1): no answer at all.
//  - An opcode other than QUERY: NOTIMP. A query that ldns cannot parse (truncated, bad label
//    lengths, compression loops, ...), more than one OPT record, or a query larger than
//    Options::max_query_bytes: FORMERR, header only. QDCOUNT other than 1: FORMERR.
//  - EDNS: a query with an OPT record gets one back (version 0, UDP size 1232, DO copied); an
//    EDNS version other than 0 gets BADVERS (RFC 6891).
//  - Over UDP, an answer that does not fit the client's size (512 bytes, or its EDNS size up to
//    1232) is sent as header and question with TC=1, so the client retries over TCP.
// Each query is counted once in `ferry_dns_queries_total{result=...}` (see Counters()).
//
// Transports: UDP, and TCP with the RFC 1035/7766 two-byte length prefix, any number of queries
// per connection (answered in order), closed after Options::tcp_idle_timeout without traffic.
// At most Options::max_tcp_connections are open; further clients wait in the listen backlog.
// One thread serves both with epoll; the lookup runs on it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace ferry {

class DnsServer {
 public:
  // Returns the VIP of `service` in `tenant` as an IPv4 dotted quad ("10.100.0.7"), or nullopt
  // when there is no such service. Both names arrive lower-case and are valid Ferry names
  // (common/naming.h). Called on the server thread (and on whichever thread calls
  // HandleQuery), one query at a time per thread: it must be thread-safe and quick, since every
  // other query waits for it. A returned string that is not an IPv4 address is a bug in the
  // caller: the query gets SERVFAIL (result "servfail_bad_vip") and an error is logged.
  using Lookup = std::function<std::optional<std::string>(absl::string_view tenant,
                                                          absl::string_view service)>;

  enum class Transport { kUdp, kTcp };

  struct Options {
    // The zone the server is authoritative for: a DNS name of valid Ferry labels (case and a
    // trailing dot do not matter).
    std::string zone = "ferry.internal";
    // TTL of A answers, in whole seconds (0 to 2^31-1). Released VIPs must cool down at least
    // this long before reuse, so that no cache still maps the old name to them.
    absl::Duration ttl = absl::Seconds(30);
    // How long resolvers may cache a negative answer (NXDOMAIN or NODATA): the TTL and MINIMUM
    // of the zone's SOA, in whole seconds (0 to 2^31-1). Kept short so that a new service
    // resolves soon after it registers.
    absl::Duration negative_ttl = absl::Seconds(5);
    // Queries larger than this (bytes, 512 to 65535) get FORMERR. Real queries are a few hundred
    // bytes; the bound keeps what one TCP connection can make the server buffer small.
    size_t max_query_bytes = 4096;
    // Open TCP connections at most (>= 1).
    int max_tcp_connections = 128;
    // A TCP connection that neither sends nor receives for this long is closed (> 0).
    absl::Duration tcp_idle_timeout = absl::Seconds(10);
  };

  // A server for `options` answering from `lookup` (must not be empty: crashes otherwise, a bug
  // in the caller). Registers its metrics in `registry`, which the server shares ownership of;
  // nullptr means a private registry (fuzzers, tools). Does not open any socket.
  // INVALID_ARGUMENT naming the option when an option is out of range or the zone is not a
  // valid name.
  static absl::StatusOr<std::unique_ptr<DnsServer>> Create(
      Options options, Lookup lookup, std::shared_ptr<prometheus::Registry> registry);

  // Stops the server (see Stop).
  ~DnsServer();

  DnsServer(const DnsServer&) = delete;
  DnsServer& operator=(const DnsServer&) = delete;

  // Binds UDP and TCP on `listen_address` and serves on a new thread. The address is
  // "ipv4:port" or "[ipv6]:port" with a numeric host ("0.0.0.0" for every IPv4 address; an IPv6
  // address binds IPv6 only) and a port from 0 to 65535; 0 picks a port free for both UDP and
  // TCP (see port()). Returns INVALID_ARGUMENT for a malformed address or one that is not on
  // this host, ALREADY_EXISTS when the port is taken, PERMISSION_DENIED for a port below 1024
  // without CAP_NET_BIND_SERVICE, FAILED_PRECONDITION after a successful Start or after Stop (a
  // server runs at most once; a failed Start may be retried). Thread-safe.
  absl::Status Start(const std::string& listen_address);

  // The bound port (UDP and TCP) once Start succeeded, still after Stop; else 0. Thread-safe.
  int port() const { return port_.load(std::memory_order_acquire); }

  // Closes every TCP connection (responses not yet sent are lost), joins the server thread and
  // closes the sockets. Idempotent and thread-safe; returns once the thread is gone. Must not
  // be called from the lookup.
  void Stop();

  // The whole answer logic: one query message (without the TCP length prefix) in, the response
  // message out, or nullopt when the query must be dropped. Counts the query. Pure apart from
  // the lookup and the counters, so it is also the fuzzing entry point; the UDP and TCP paths
  // call it for every message. Any bytes are fine. Thread-safe (if the lookup is).
  std::optional<std::string> HandleQuery(absl::string_view query, Transport transport) const;

  // Queries handled so far by result, including results never seen (as 0): answer, nodata,
  // nxdomain, refused_out_of_zone, refused_class, refused_zone_transfer, formerr_malformed,
  // formerr_question_count, formerr_oversize, notimp_opcode, badvers, servfail_bad_vip,
  // dropped_short, dropped_response, dropped_internal_error. The same numbers as the
  // `ferry_dns_queries_total` counters. Thread-safe.
  std::map<std::string, uint64_t> Counters() const;

 private:
  class Responder;  // The answer logic (dns_server.cc).
  class EventLoop;  // The server thread's state (dns_server.cc).
  enum class State { kNew, kRunning, kStopped };

  DnsServer(Options options, std::unique_ptr<Responder> responder,
            std::shared_ptr<prometheus::Registry> registry);

  const Options options_;
  const std::unique_ptr<Responder> responder_;
  const std::shared_ptr<prometheus::Registry> registry_;
  // TCP connections closed, by reason; open TCP connections; UDP responses the kernel refused.
  prometheus::Family<prometheus::Counter>& tcp_closed_;
  prometheus::Gauge& tcp_open_;
  prometheus::Counter& udp_send_errors_;

  std::mutex mu_;  // Serializes Start and Stop.
  State state_ ABSL_GUARDED_BY(mu_) = State::kNew;
  int udp_fd_ ABSL_GUARDED_BY(mu_) = -1;
  int tcp_fd_ ABSL_GUARDED_BY(mu_) = -1;
  int epoll_fd_ ABSL_GUARDED_BY(mu_) = -1;
  int wake_fd_ ABSL_GUARDED_BY(mu_) = -1;  // eventfd that tells the thread to stop.
  std::thread thread_ ABSL_GUARDED_BY(mu_);
  std::atomic<int> port_{0};
};

}  // namespace ferry
