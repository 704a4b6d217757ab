// Many concurrent UDP flows for tests: each flow is a client socket of its own
// (its own source port, so a Ferry agent sees a separate peer and opens a
// separate flow), connected to its target. A flow sends numbered datagrams one
// at a time and checks that every reply is its own echo, so a reply delivered
// to the wrong flow ("cross-delivery") is caught and counted.
//
// Datagram `s` of flow `f` reads "<run> f=<f> s=<s> p=<n> " followed by n
// padding pattern bytes, where <run> is a random token of the set. A reply is its
// echo when it is "<prefix><that datagram>" for one of the flow's allowed
// prefixes (a backend that prefixes its replies, e.g. with its tenant or
// backend name). Anything else that reaches the flow's socket is "foreign".
//
// UDP may drop: a datagram with no reply after `retry_after` is sent again, up
// to `max_attempts` sends in all, and then given up as lost.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace ferry::backends {

struct UdpFlowSpec {
  // "127.0.0.1:port" the flow's socket is connected to.
  std::string target;
  // What may come before the echoed datagram in a reply; "" for a plain echo.
  std::vector<std::string> allowed_prefixes = {""};
};

// What one flow (or, summed, a set of flows) saw. Counts are of datagrams
// since the flow was opened.
struct UdpFlowStats {
  uint64_t sent = 0;        // distinct datagrams sent (a retry does not count)
  uint64_t answered = 0;    // of those, how many got their echo back (at least once)
  uint64_t retries = 0;     // extra sends of unanswered datagrams
  uint64_t duplicates = 0;  // echoes of an already answered datagram
  uint64_t foreign = 0;     // replies that are not an echo of this flow's datagrams
  // Answered datagrams by the prefix their echo carried.
  std::map<std::string, uint64_t> answered_by_prefix;
  // A few of the foreign replies, escaped, for failure messages.
  std::vector<std::string> foreign_samples;

  // Adds `other`'s counts (and samples, up to a few) to this one.
  void Add(const UdpFlowStats& other);
};

struct UdpExchangeOptions {
  // New datagrams each flow sends in this exchange (flows may differ in how
  // many they sent before).
  int datagrams_per_flow = 1;
  // Sends of one datagram before it is given up as lost (>= 1).
  int max_attempts = 4;
  // Time without a reply before a datagram is sent again.
  absl::Duration retry_after = absl::Milliseconds(500);
  // Most datagrams awaiting a reply across all flows at once (each flow has at
  // most one), so that a burst does not overflow the target's socket buffer.
  size_t max_in_flight = 256;
  // Padding bytes after the datagram's header text.
  size_t padding = 0;
  // Bound on the whole exchange.
  absl::Duration timeout = absl::Seconds(30);
};

// Not thread-safe: one thread drives a set (Exchange and the accessors).
class UdpFlowSet {
 public:
  // One connected, non-blocking socket per spec. INVALID_ARGUMENT for a bad
  // target or an empty allowed_prefixes; RESOURCE_EXHAUSTED when sockets run
  // out (raise RLIMIT_NOFILE); the errno's code otherwise.
  static absl::StatusOr<std::unique_ptr<UdpFlowSet>> Open(std::vector<UdpFlowSpec> flows);
  ~UdpFlowSet();
  UdpFlowSet(const UdpFlowSet&) = delete;
  UdpFlowSet& operator=(const UdpFlowSet&) = delete;

  size_t size() const;

  // Every flow sends its next options.datagrams_per_flow datagrams, one at a
  // time, and collects the replies (also any replies still arriving for
  // earlier exchanges). Returns OK once every datagram is answered or given up;
  // DEADLINE_EXCEEDED (the stats are still updated) when options.timeout
  // passes first; INTERNAL for a socket error other than a refused or full
  // send, which count as losses.
  absl::Status Exchange(const UdpExchangeOptions& options);

  // Stats of flow `i` (< size()).
  const UdpFlowStats& flow(size_t i) const;
  // The sum over all flows.
  UdpFlowStats Total() const;
  // The local "127.0.0.1:port" of flow `i`'s socket.
  std::string local_address(size_t i) const;

 private:
  struct Flow;
  UdpFlowSet(std::string run, int epoll_fd);
  // Handles one datagram received on flow `index`.
  void OnReply(size_t index, absl::string_view reply);
  std::string Datagram(size_t index, uint64_t seq, size_t padding) const;
  // Sends flow `index`'s in-flight datagram; false on a socket error that is
  // not a loss (`error` says which).
  bool Send(Flow& flow, std::string* error);

  const std::string run_;
  const int epoll_fd_;
  std::vector<Flow> flows_;
  // Flows with a datagram awaiting its reply.
  size_t in_flight_ = 0;
};

}  // namespace ferry::backends
