// Keeps the connector's DNS-discovered backends current.
//
// A backend address in ferry.v1.BackendSpec.address may be `dns://name:port` (the A and AAAA
// records of `name`, with `port`) or `srv://_service._proto.name` (the SRV targets' A and AAAA
// records, each with its SRV record's port). BackendDiscovery resolves every such source through
// a DnsResolver, again after the answer's TTL (clamped to [min_ttl, max_ttl]; a TTL of 0 gives
// min_ttl), and reports each change of a source's address set. A failed resolution (timeout,
// SERVFAIL, NXDOMAIN, no records) keeps the last known set, is counted, and is retried after
// min_ttl: a DNS outage never empties a backend set.
//
// Threads: a scheduler thread of its own decides when each source is due and hands the queries
// to the resolver; answers are applied, and `on_change` called, on the resolver's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "dataplane/socket_address.h"
#include "discovery/dns_resolver.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace ferry::discovery {

// One parsed discovery source.
struct DiscoverySource {
  enum class Kind { kHost, kSrv };
  Kind kind = Kind::kHost;
  std::string name;  // "backend.example.internal", "_http._tcp.example.internal"
  // kHost: 1..65535, or 0 for "dns://name" without a port (ICMP backends); kSrv: 0 (the port
  // comes from each SRV record).
  uint16_t port = 0;
};

// True when `address` names a discovery source (starts with "dns://" or "srv://"), whether
// valid or not; static "host:port" backends are not.
bool IsDiscoverySource(absl::string_view address);

// Parses "dns://name:port", "dns://name" (no port, for ICMP backends: port 0) or
// "srv://_service._proto.name". `name` must be a DNS name (labels of
// 1..63 letters, digits, '-' or '_', 253 characters at most, an optional final '.'), not an IP
// literal (write a static "ip:port" backend for that); an SRV name needs at least three labels,
// the first two starting with '_'. INVALID_ARGUMENT saying what is wrong otherwise.
absl::StatusOr<DiscoverySource> ParseDiscoverySource(absl::string_view source);

// When to ask again after an answer with `ttl`: `ttl` clamped to [min_ttl, max_ttl].
absl::Duration RefreshDelay(absl::Duration ttl, absl::Duration min_ttl, absl::Duration max_ttl);

class BackendDiscovery {
 public:
  struct Options {
    // Bounds of the re-resolution delay (ConnectorConfig.dns_min_ttl / dns_max_ttl). min_ttl is
    // also the retry delay after a failure. min_ttl >= 100ms, max_ttl >= min_ttl.
    absl::Duration min_ttl = absl::Seconds(5);
    absl::Duration max_ttl = absl::Seconds(300);
    // Optional. Adds ferry_connector_dns_resolutions_total{result="ok"|"error"} (counter) and
    // ferry_connector_dns_backends{source} (gauge: addresses in the source's current set; the
    // series is removed with the source). Must outlive the BackendDiscovery.
    prometheus::Registry* registry = nullptr;
    // Optional clock (tests); absl::Now when empty. Due times are computed with it; the
    // scheduler also re-checks at least every min_ttl, so an advanced fake clock is noticed.
    std::function<absl::Time()> now;
  };

  using ChangeCallback =
      std::function<void(const std::string& source, const std::vector<dataplane::SocketAddress>&)>;

  // Takes ownership of `resolver`. `on_change(source, addresses)` runs on the resolver's thread,
  // one call at a time, whenever a source's address set changes (its first successful answer
  // included; the set is sorted, deduplicated and never empty). It is not called on failure
  // (the last set stays), and never for a source after the SetSources that removed it
  // returned. It may call Current() and Failures(), but not SetSources() (deadlock) nor
  // destroy this object; it should be quick (it holds up every other DNS answer).
  // INVALID_ARGUMENT for a null resolver, an empty `on_change` or bad TTL bounds.
  static absl::StatusOr<std::unique_ptr<BackendDiscovery>> Create(
      std::unique_ptr<DnsResolver> resolver, Options options, ChangeCallback on_change);

  // Stops the scheduler, then destroys the resolver (queries in flight are cancelled and
  // ignored). `on_change` is not running and is not called once this returns. Must not be
  // called from `on_change`.
  ~BackendDiscovery();

  BackendDiscovery(const BackendDiscovery&) = delete;
  BackendDiscovery& operator=(const BackendDiscovery&) = delete;

  // Replaces the watched sources (strings exactly as configured: "dns://name:port",
  // "srv://_svc._proto.name"; duplicates count once). New ones resolve at once, kept ones keep
  // their set and schedule, removed ones stop (their answers in flight are dropped).
  // INVALID_ARGUMENT naming the first bad string (nothing changes then). Any thread, but not
  // from inside `on_change` nor while holding a lock that `on_change` takes: it waits for an
  // on_change in progress to return.
  absl::Status SetSources(const std::vector<std::string>& sources);

  // The last known set of `source` (empty when never resolved or not watched). Any thread.
  std::vector<dataplane::SocketAddress> Current(const std::string& source) const;

  // How many resolutions of `source` failed since it was added (0 when not watched). Any thread.
  int64_t Failures(const std::string& source) const;

  // The error of `source`'s latest resolution; OK when it succeeded, has not run yet, or the
  // source is not watched. For status displays. Any thread.
  absl::Status LastError(const std::string& source) const;

 private:
  struct SourceState {
    DiscoverySource parsed;
    uint64_t generation = 0;  // Tells answers for a removed-and-re-added source apart.
    std::vector<dataplane::SocketAddress> addresses;
    int64_t failures = 0;
    absl::Status last_error;
    bool in_flight = false;
    absl::Time next_due = absl::InfinitePast();
    prometheus::Gauge* backends = nullptr;
  };

  BackendDiscovery(std::unique_ptr<DnsResolver> resolver, Options options,
                   ChangeCallback on_change);

  void RunScheduler();
  void StartQueryLocked(const std::string& source, const SourceState& state)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnAnswer(const std::string& source, uint64_t generation,
                absl::StatusOr<DnsResolver::Answer> answer);

  std::unique_ptr<DnsResolver> resolver_;
  const Options options_;
  const ChangeCallback on_change_;

  prometheus::Counter* resolutions_ok_ = nullptr;
  prometheus::Counter* resolutions_error_ = nullptr;
  prometheus::Family<prometheus::Gauge>* backends_family_ = nullptr;

  // Held while an answer is applied and `on_change` runs, and by SetSources, so that no
  // on_change for a removed source runs after SetSources returns. Taken before mu_.
  absl::Mutex delivery_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  std::map<std::string, SourceState> sources_ ABSL_GUARDED_BY(mu_);
  uint64_t next_generation_ ABSL_GUARDED_BY(mu_) = 1;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;  // The scheduler should look at the sources again.
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  std::thread scheduler_;
};

}  // namespace ferry::discovery
