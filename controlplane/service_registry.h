// The Intermediate's model of the fabric: which connectors are attached,
// which services they serve (from their config files or registered through the
// admin API), the health of each backend, and the route version that changes
// whenever any of that does.
//
// Connector streams attach through AttachConnector and keep a ConnectorLink to
// receive commands. A detached connector's services stay routed for the grace
// period, then leave the routes (config services are forgotten; API services
// stay registered, unrouted, until their connector returns). API
// registrations, service ids and the route version are persisted in the
// StateStore so that a restart keeps them.
//
// Every registered service holds a VIP lease (controlplane/vip_allocator.h)
// for as long as it is registered: taken when it enters the registry (a
// connector's Hello, RegisterApiService), honouring spec.pinned_vip, and
// released into cooldown when it leaves (dropped from a Hello, its connector's
// grace period over, DeregisterApiService). Leases live in the StateStore, so
// a service that comes back after a restart gets the same VIP; leases that no
// registered service claims within connector_grace of a restart are released.
//
// Data-plane sessions (controlplane/session_table.h) live here too, in
// memory only: OpenSession issues them, BuildSnapshot hands them to their
// relay and connector, and every session change bumps the route version.
// Sessions expire at Tick; a session whose service leaves the routes (or moves
// to another connector) is dropped with the change that removed it. The
// data-plane addresses relays and connectors announce on their WatchRoutes
// streams are recorded here for the life of each stream.
//
// Thread-safety: every method is thread-safe. Subscribers and links are called
// without the registry's lock held; they must not block.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/spiffe_id.h"
#include "controlplane/intermediate_metrics.h"
#include "controlplane/session_table.h"
#include "controlplane/state_store.h"
#include "controlplane/vip_allocator.h"
#include "ferry/v1/admin.pb.h"
#include "ferry/v1/common.pb.h"
#include "ferry/v1/registry.pb.h"
#include "ferry/v1/routes.pb.h"
#include "ferry/v1/sessions.pb.h"

namespace ferry {

// The command channel to one connector stream.
class ConnectorLink {
 public:
  virtual ~ConnectorLink() = default;
  // Queues a command for the connector. Must not block.
  virtual void Send(v1::ConnectorCommand command) = 0;
  // Ends the stream with `status` (a newer session replaced it, or it missed
  // its keepalives). Must not block.
  virtual void Close(const absl::Status& status) = 0;
};

class ServiceRegistry {
 public:
  struct Options {
    // How long a detached connector's services stay routed.
    absl::Duration connector_grace = absl::Seconds(10);
    // Keepalive interval asked of connectors; three missed ones end a stream.
    absl::Duration keepalive_interval = absl::Seconds(5);
    // Time source (tests inject a fake one).
    std::function<absl::Time()> now = [] { return absl::Now(); };
    // VIP pools, in order. Empty: one pool 10.100.0.0/24 for every tenant.
    std::vector<v1::VipPool> vip_pools;
    // How long a released VIP is kept from other services; at least the DNS
    // TTL.
    absl::Duration vip_cooldown = absl::Seconds(60);
    // Zone of service DNS names: <service>.<tenant>.<dns_zone>.
    std::string dns_zone = "ferry.internal";
    // Lifetime of a data-plane session; must be positive.
    absl::Duration session_ttl = absl::Hours(1);
    // Live sessions one agent identity may hold; at least 1.
    int max_sessions_per_agent = 64;
  };

  // Loads persisted registrations from `store`. `store` and `metrics` must
  // outlive the registry. INVALID_ARGUMENT for bad options (a VIP pool that is
  // not a valid IPv4 CIDR or overlaps another, a dns_zone that is not
  // dot-separated DNS labels, a negative vip_cooldown, a session_ttl <= 0, a
  // max_sessions_per_agent < 1); the store's error if it cannot be read.
  static absl::StatusOr<std::unique_ptr<ServiceRegistry>> Create(controlplane::StateStore* store,
                                                                 IntermediateMetrics* metrics,
                                                                 Options options);

  // --- Connector sessions -------------------------------------------------

  // Attaches a connector stream that said Hello. Replaces (and closes) an
  // older stream of the same identity. Returns the session serial to pass to
  // the other connector calls, or INVALID_ARGUMENT / PERMISSION_DENIED /
  // ALREADY_EXISTS for a bad Hello (nothing is attached then). A service whose
  // VIP cannot be leased refuses the Hello with the allocator's status (its
  // message prefixed with the service's path "hello.services[i]"): a bad or
  // taken pin (INVALID_ARGUMENT, ALREADY_EXISTS, UNAVAILABLE while cooling),
  // an exhausted pool (RESOURCE_EXHAUSTED). Addresses first leased by a
  // refused Hello are given back; a lease it moved to a new pin stays moved
  // (a new route version then tells watchers).
  absl::StatusOr<uint64_t> AttachConnector(const SpiffeId& id, const std::string& address,
                                           const v1::Hello& hello,
                                           std::shared_ptr<ConnectorLink> link);
  // Re-applies a Hello on a live session (the connector reloaded its config).
  absl::Status UpdateConnector(const SpiffeId& id, uint64_t serial, const v1::Hello& hello);
  // Records liveness.
  void Keepalive(const SpiffeId& id, uint64_t serial);
  // Records the connector's last config reload outcome (shown in
  // ListConnectors' config_error). Ignored for a replaced session.
  void SetConfigStatus(const SpiffeId& id, uint64_t serial, const v1::ConfigStatus& status);
  // Applies a health report: it replaces the service's backend set with the
  // report's (the connector's own view: resolved addresses with health).
  // INVALID_ARGUMENT naming the field for a backend without an address or
  // whose source is not one of the spec's backends. NOT_FOUND when the service is not this
  // connector's.
  absl::Status ReportHealth(const SpiffeId& id, uint64_t serial, const v1::HealthReport& report);
  // The stream ended; its services stay routed for the grace period. A stale
  // serial (the session was replaced) is ignored.
  void DetachConnector(const SpiffeId& id, uint64_t serial);

  // The Welcome for a freshly attached session.
  v1::Welcome WelcomeFor(const SpiffeId& id);

  // --- Admin API ------------------------------------------------------------

  // Registers an API service (spec.tenant and spec.connector must be set) and
  // leases its VIP (spec.pinned_vip if set); a VIP refusal refuses the
  // registration with the allocator's status (see AttachConnector).
  absl::StatusOr<v1::Service> RegisterApiService(const v1::ServiceSpec& spec);
  // NOT_FOUND, or FAILED_PRECONDITION for a config-file service. The service's
  // VIP goes into cooldown.
  absl::Status DeregisterApiService(const std::string& tenant, const std::string& name);
  // Services of `tenant` ("" for all), sorted by tenant and name.
  std::vector<v1::Service> ListServices(const std::string& tenant);
  // Connected connectors (and those within their grace period).
  std::vector<v1::Peer> ListConnectors();
  // VIP leases of `tenant` ("" for all), sorted by tenant and service, from
  // the state store (so also those held by services that left less than
  // connector_grace before a restart). The store's error if it cannot be read.
  absl::StatusOr<std::vector<v1::Lease>> ListLeases(const std::string& tenant);
  // The VIP of registered service `name` of `tenant`, or nullopt when no such
  // service is registered or it holds no VIP.
  std::optional<std::string> ResolveVip(const std::string& tenant, const std::string& name);
  // The DNS zone of service names (Options::dns_zone).
  const std::string& dns_zone() const { return options_.dns_zone; }

  // --- Routes ---------------------------------------------------------------

  uint64_t route_version();
  // The snapshot a watcher of `role` ("relay" or "connector") named `id`
  // sees at the current version. Relays see every routed service; a connector
  // sees its own.
  v1::RouteSnapshot BuildSnapshot(const SpiffeId& id);
  // Calls `callback` after every change (without locks held). Returns an id
  // for Unsubscribe. Unsubscribe waits for a running callback to finish.
  uint64_t Subscribe(std::function<void()> callback);
  void Unsubscribe(uint64_t subscription);
  // When `version` was created, if still remembered (the last 4096 versions).
  std::optional<absl::Time> VersionTime(uint64_t version);
  // Records the version a watcher ACKed, for status displays.
  void RecordAck(const SpiffeId& id, uint64_t version);

  // Expires grace periods and ends streams that missed their keepalives,
  // releasing the VIPs of services that leave, and removes expired sessions.
  // Called periodically by the owner's timer thread (and by tests).
  void Tick();

  // --- Data-plane addresses and sessions -------------------------------------

  // Records the data-plane addresses ("host:port", empty for none) that
  // WatchRoutes stream `stream` (an id unique among open streams) of relay or
  // connector `id` announced in its subscription, until
  // ClearWatcherAddresses. INVALID_ARGUMENT naming the field ("udp_address",
  // "stream_address") for a bad address, or for another role; nothing is
  // recorded then. Bumps the route version when snapshots change (a
  // connector with sessions moved).
  absl::Status SetWatcherAddresses(const SpiffeId& id, uint64_t stream,
                                   const std::string& udp_address,
                                   const std::string& stream_address);
  // Forgets what `stream` announced (the stream ended). A relay's sessions
  // stay assigned to it; they expire normally.
  void ClearWatcherAddresses(const SpiffeId& id, uint64_t stream);

  // Opens a data-plane session for `agent` to its own tenant's service
  // `service` (cross-tenant policy is the caller's) and bumps the route
  // version, so that the relay and the connector receive it. Returns the
  // agent's answer: its hop, the relay's addresses, the service's id, VIP,
  // protocol and port, and the TTL. NOT_FOUND for an unknown service or one
  // no connector serves right now; UNAVAILABLE, RESOURCE_EXHAUSTED or
  // INTERNAL from SessionTable::Open.
  absl::StatusOr<v1::OpenSessionResponse> OpenSession(const SpiffeId& agent,
                                                      const std::string& service);
  // Sessions of `tenant` ("" for all), without keys (SessionTable::List).
  std::vector<v1::SessionInfo> ListSessions(const std::string& tenant);

  // For signaling (controlplane/signal_hub.h): who session `session_id` (its
  // agent hop's id) names, as SessionTable::FindParties; nullopt when
  // unknown. Sets `*connector_link` to the command link of the session's
  // connector stream, or null when that connector is detached or the session
  // ended.
  std::optional<controlplane::SessionParties> FindSessionParties(
      uint64_t session_id, std::shared_ptr<ConnectorLink>* connector_link);

 private:
  struct ServiceEntry {
    v1::ServiceSpec spec;  // tenant always set
    uint32_t id = 0;
    std::string origin;     // "config" or "api"
    std::string connector;  // the serving connector's name
    // The serving connector's last health report: every backend it resolved
    // from the spec (a dns:// or srv:// source may give several), each with
    // its health. Absent until the first report (the spec's backends then
    // count as UNKNOWN); reset when the spec changes or the connector leaves.
    std::optional<std::vector<v1::BackendStatus>> reported;
    // The leased VIP; empty only if leasing failed while loading the state.
    std::string vip;
  };
  struct ConnectorEntry {
    SpiffeId id;
    std::string address;
    std::string version;
    absl::Time connected_at;
    absl::Time last_seen;
    uint64_t serial = 0;
    std::shared_ptr<ConnectorLink> link;  // null while detached
    absl::Time grace_deadline = absl::InfiniteFuture();
    uint64_t acked_route_version = 0;
    v1::ConfigStatus config_status;  // the last reload's outcome
  };
  using Key = std::pair<std::string, std::string>;  // (tenant, name)

  ServiceRegistry(controlplane::StateStore* store, IntermediateMetrics* metrics, Options options,
                  std::unique_ptr<controlplane::VipAllocator> vips,
                  std::unique_ptr<controlplane::SessionTable> sessions);
  absl::Status Load();

  // Leases the VIP of `spec` (its tenant and name, honouring pinned_vip).
  // `*fresh` tells whether the service held no lease before. The error is
  // the allocator's, its message prefixed with `path`.
  absl::StatusOr<std::string> LeaseVipLocked(const v1::ServiceSpec& spec, absl::string_view path,
                                             bool* fresh) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Gives back the lease of a service leaving the registry: into cooldown, or
  // at once (`discard`) for one that was never announced. Logs failures.
  void ReleaseVipLocked(const Key& key, bool discard = false) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Updates the VIP pool gauges from the store.
  void ExportVipUsageLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Applies a Hello's services for a connector. Requires mu_.
  absl::Status ApplyHelloLocked(const SpiffeId& id, const v1::Hello& hello)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<uint32_t> ServiceIdLocked(const Key& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool RoutedLocked(const ServiceEntry& entry) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::Service ToServiceLocked(const ServiceEntry& entry) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::ApiServices ApiServicesForLocked(const Key& connector) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops the sessions whose service is no longer routed through their
  // connector.
  void DropUnroutedSessionsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Bumps and persists the route version, drops unrouted sessions and updates
  // gauges. Requires mu_.
  void BumpVersionLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Recomputes the service-health and connected-connector gauges.
  void UpdateGaugesLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Calls subscribers; must be called without mu_.
  void Notify() ABSL_LOCKS_EXCLUDED(mu_);

  controlplane::StateStore* const store_;
  IntermediateMetrics* const metrics_;
  const Options options_;
  const std::unique_ptr<controlplane::VipAllocator> vips_;
  const std::unique_ptr<controlplane::SessionTable> sessions_ ABSL_PT_GUARDED_BY(mu_);

  absl::Mutex mu_;
  std::map<Key, ServiceEntry> services_ ABSL_GUARDED_BY(mu_);
  std::map<Key, ConnectorEntry> connectors_ ABSL_GUARDED_BY(mu_);
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_serial_ ABSL_GUARDED_BY(mu_) = 1;
  std::deque<std::pair<uint64_t, absl::Time>> version_times_ ABSL_GUARDED_BY(mu_);
  // Leases found at start-up that no loaded service holds (config services of
  // connectors not back yet), with the time they are released unless a
  // service of that name registers first.
  std::map<Key, absl::Time> unclaimed_leases_ ABSL_GUARDED_BY(mu_);

  absl::Mutex subscribers_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::map<uint64_t, std::function<void()>> subscribers_ ABSL_GUARDED_BY(subscribers_mu_);
  uint64_t next_subscription_ ABSL_GUARDED_BY(subscribers_mu_) = 1;
};

}  // namespace ferry
