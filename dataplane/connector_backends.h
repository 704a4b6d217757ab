// ConnectorBackends: the connector's own view of its services' backends.
//
// For every service the connector serves (from its config file and from the
// admin API), each configured backend source becomes addresses:
//   - "host:port" (an IP literal, or a name resolved once when the service is
//     set), or a bare host for ICMP services;
//   - "dns://name:port" and "srv://_service._proto.name", kept resolved by
//     discovery::BackendDiscovery (c-ares, re-resolved on the records' TTL);
// and every address of a service with a health_check is checked by one
// health::HealthMonitor thread. The result per service is a list of
// v1::BackendStatus (resolved address, health, source): the payload of the
// connector's HealthReport to the Intermediate, and the backends the
// connector routes to itself (ApplyTo), so that a backend that fails its
// checks leaves the connector's own routing at once, before the
// Intermediate's next route version arrives.
//
// Health: a backend of a service without a health_check is UNKNOWN (routed).
// With a check it is UNKNOWN until the first verdict (routed), then HEALTHY or
// UNHEALTHY as health::HealthMonitor's thresholds decide (UNHEALTHY is not
// routed). ICMP services' addresses are bare IPs ("10.0.0.1").
//
// Changes are computed on a thread of this class's own, so the health and
// resolver threads never wait on the connector's session stream: `on_change`
// runs there with the reports of the services whose backend list changed.
//
// Thread-safety: every public method is thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "dataplane/socket_address.h"
#include "discovery/backend_discovery.h"
#include "ferry/v1/common.pb.h"
#include "ferry/v1/registry.pb.h"
#include "ferry/v1/routes.pb.h"
#include "health/health_monitor.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace ferry::dataplane {

class ConnectorBackends {
 public:
  struct Options {
    // DNS servers for dns:// and srv:// ("ip" or "ip:port"); empty: the
    // system's resolv.conf.
    std::vector<std::string> dns_servers;
    // Bounds on re-resolution, whatever the records' TTL.
    absl::Duration dns_min_ttl = absl::Seconds(5);
    absl::Duration dns_max_ttl = absl::Seconds(300);
    // Adds the health, DNS and ferry_connector_backends{service,health}
    // families when set.
    prometheus::Registry* registry = nullptr;
  };
  // The reports of services whose backend list changed (and, after
  // ReportAll, of every service).
  using ChangeCallback = std::function<void(const std::vector<v1::HealthReport>&)>;

  // Starts the resolver, the health monitor and the change thread. The
  // DnsResolver's INVALID_ARGUMENT for a bad dns_servers entry; the
  // monitor's error when its thread cannot start.
  static absl::StatusOr<std::unique_ptr<ConnectorBackends>> Start(Options options,
                                                                  ChangeCallback on_change);
  // Stops every thread; `on_change` is not called after it returns.
  ~ConnectorBackends();
  ConnectorBackends(const ConnectorBackends&) = delete;
  ConnectorBackends& operator=(const ConnectorBackends&) = delete;

  // Sets the config file's services and the API-registered ones (each call
  // replaces its own set). Static names are resolved here (getaddrinfo: call
  // from a control thread). A source that cannot be used (a name that does
  // not resolve) contributes no address and is logged; the rest applies.
  void SetConfigServices(std::vector<v1::ServiceSpec> services);
  void SetApiServices(std::vector<v1::ServiceSpec> services);

  // Makes the next round report every service, changed or not (the
  // Intermediate forgot them: a new session stream).
  void ReportAll();

  // Replaces the backends of each snapshot service this object knows with
  // its routable addresses (UNKNOWN and HEALTHY). Services it does not know
  // keep the snapshot's.
  void ApplyTo(v1::RouteSnapshot* snapshot) const;

  // The current list per service name.
  std::map<std::string, std::vector<v1::BackendStatus>> View() const;

 private:
  ConnectorBackends(Options options, ChangeCallback on_change);

  // The change thread: on each wake-up, recomputes the view, re-aims
  // discovery and the health monitor, and reports what changed.
  void Run();
  // Every service's list from specs, addresses and `health` (the monitor's
  // states by target key; an address without one is UNKNOWN).
  std::map<std::string, std::vector<v1::BackendStatus>> ComputeLocked(
      const std::map<std::string, v1::HealthState>& health) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetServices(bool api, std::vector<v1::ServiceSpec> services);
  void ExportLocked(const std::map<std::string, std::vector<v1::BackendStatus>>& view)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  const ChangeCallback on_change_;
  std::unique_ptr<discovery::BackendDiscovery> discovery_;
  std::unique_ptr<health::HealthMonitor> monitor_;
  prometheus::Family<prometheus::Gauge>* backends_family_ = nullptr;

  mutable absl::Mutex mu_;
  absl::CondVar wake_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool dirty_ ABSL_GUARDED_BY(mu_) = false;
  bool report_all_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, v1::ServiceSpec> config_specs_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::ServiceSpec> api_specs_ ABSL_GUARDED_BY(mu_);
  // Static sources' addresses (resolved once per SetServices).
  std::map<std::string, std::vector<SocketAddress>> static_ ABSL_GUARDED_BY(mu_);
  // Discovered sources' addresses, as BackendDiscovery last reported them
  // (kept here so that no call into discovery happens under mu_).
  std::map<std::string, std::vector<SocketAddress>> discovered_ ABSL_GUARDED_BY(mu_);
  // The last computed and reported lists.
  std::map<std::string, std::vector<v1::BackendStatus>> view_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, prometheus::Gauge*> gauges_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace ferry::dataplane
