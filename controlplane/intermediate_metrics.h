// Every Prometheus metric the Intermediate exports, in one place so that
// docs/METRICS.md can list them from one file. Families are created once at
// start-up; labelled children are created on first use (prometheus-cpp's Add
// is thread-safe) and are cheap to update afterwards.
#pragma once

#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace ferry {

class IntermediateMetrics {
 public:
  explicit IntermediateMetrics(std::shared_ptr<prometheus::Registry> registry);

  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }

  // A refused peer: at the TLS handshake (no_client_certificate, unknown_ca,
  // certificate_expired, ...) or at an RPC (no_uri_san, malformed_uri_san,
  // wrong_trust_domain, wrong_role, other_tenant).
  void CountAuthFailure(absl::string_view reason);
  // One finished RPC.
  void ObserveRpc(absl::string_view method, absl::string_view code, double seconds);
  // Connected peers by role (connector, relay, agent).
  prometheus::Gauge& ConnectedPeers(absl::string_view role);
  // Services by aggregate health (healthy, unhealthy, unknown).
  prometheus::Gauge& Services(absl::string_view state);
  prometheus::Gauge& route_version() { return *route_version_; }
  // Time from a route change to a watcher's ACK of the version holding it.
  prometheus::Histogram& route_push_latency() { return *route_push_latency_; }
  prometheus::Counter& route_nacks() { return *route_nacks_; }
  void CountSignalingMessage(absl::string_view kind);
  void CountSignalingDenial(absl::string_view reason);
  prometheus::Gauge& VipPoolSize(absl::string_view pool);
  prometheus::Gauge& VipPoolUsed(absl::string_view pool);
  // Data-plane sessions in the Intermediate's table (expired ones until the
  // next tick removes them).
  prometheus::Gauge& sessions_open() { return *sessions_open_; }
  // Sessions issued by Sessions.OpenSession.
  prometheus::Counter& sessions_opened() { return *sessions_opened_; }
  // An OpenSession refused: not_found, permission_denied, unavailable or
  // resource_exhausted.
  void CountSessionRefused(absl::string_view reason);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& auth_failures_;
  prometheus::Family<prometheus::Counter>& rpcs_;
  prometheus::Family<prometheus::Histogram>& rpc_latency_;
  prometheus::Family<prometheus::Gauge>& connected_peers_;
  prometheus::Family<prometheus::Gauge>& services_;
  prometheus::Family<prometheus::Counter>& signaling_messages_;
  prometheus::Family<prometheus::Counter>& signaling_denials_;
  prometheus::Family<prometheus::Gauge>& vip_pool_size_;
  prometheus::Family<prometheus::Gauge>& vip_pool_used_;
  prometheus::Family<prometheus::Counter>& sessions_refused_;
  prometheus::Gauge* route_version_;
  prometheus::Histogram* route_push_latency_;
  prometheus::Counter* route_nacks_;
  prometheus::Gauge* sessions_open_;
  prometheus::Counter* sessions_opened_;
};

}  // namespace ferry
