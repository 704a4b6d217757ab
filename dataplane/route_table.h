// The immutable route table a data-plane process forwards by, built from one
// RouteSnapshot off the hot path (on the route-watcher thread) and handed to
// the workers through WorkerSnapshots.
//
// It maps a frame's session_id to the session and hop it belongs to, and a
// service_id to the service and its backends. Each hop key is held as one
// HopAead per worker (cipher contexts are stateful and not shareable), so a
// worker seals and opens with its own contexts: no lock, no allocation.
//
// Lookups are const and may run on every worker at once; the HopAead a lookup
// returns for worker `w` must only be used by worker `w`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "dataplane/aead.h"
#include "dataplane/socket_address.h"
#include "ferry/v1/routes.pb.h"

namespace ferry::dataplane {

// Which process builds the table: decides which hops it holds and in which role.
enum class DataplaneRole {
  kRelay,      // both hops: responder on agent<->relay, initiator on relay<->connector
  kConnector,  // the connector hop only, as responder
};

struct ServiceRoute {
  uint32_t service_id = 0;
  std::string name;
  std::string tenant;
  v1::Protocol protocol = v1::PROTOCOL_UNSPECIFIED;
  uint32_t port = 0;
  // Healthy backends in snapshot order (connector tables only).
  std::vector<SocketAddress> backends;
  std::vector<std::string> backend_names;  // as the snapshot spelled them
};

struct SessionRoute {
  uint64_t agent_session_id = 0;      // 0 in a connector's table
  uint64_t connector_session_id = 0;  // the relay<->connector hop
  uint32_t service_id = 0;
  std::string tenant;
  std::string agent;
  // Relay tables: where the connector takes frames. Empty while the serving
  // connector has announced no address (it is away): frames then drop as no_route.
  SocketAddress connector_udp;
  std::string connector_stream_address;
  // Per worker. Relay: agent_aead (responder), connector_aead (initiator).
  // Connector: connector_aead (responder); agent_aead empty.
  mutable std::vector<HopAead> agent_aead;
  mutable std::vector<HopAead> connector_aead;
};

// Which hop of its session a frame's session_id names.
enum class Hop : uint8_t { kAgent, kConnector };

struct SessionRef {
  const SessionRoute* route = nullptr;  // null: unknown session
  Hop hop = Hop::kAgent;

  explicit operator bool() const { return route != nullptr; }
  uint64_t session_id() const {
    return hop == Hop::kAgent ? route->agent_session_id : route->connector_session_id;
  }
  // The AEAD of this hop for `worker`.
  HopAead& aead(size_t worker) const {
    return hop == Hop::kAgent ? route->agent_aead[worker] : route->connector_aead[worker];
  }
};

class RouteTable {
 public:
  // Builds the table for `role` with `workers` (>= 1) AEAD contexts per hop.
  // INVALID_ARGUMENT (the NACK text) for a snapshot this role cannot use: a
  // key that is not 32 bytes, a zero or duplicate session id, a relay session
  // without an agent hop or with a bad connector address, a session for a
  // service not in the snapshot, a connector backend that is not "host:port"
  // (names are resolved, so this may block: never call on a worker).
  static absl::StatusOr<std::shared_ptr<const RouteTable>> Build(const v1::RouteSnapshot& snapshot,
                                                                 DataplaneRole role,
                                                                 size_t workers);

  uint64_t version() const { return version_; }
  DataplaneRole role() const { return role_; }

  // The session and hop a frame's session_id names; empty when unknown.
  SessionRef FindSession(uint64_t session_id) const {
    auto it = sessions_by_id_.find(session_id);
    if (it == sessions_by_id_.end()) return SessionRef{};
    return it->second;
  }
  // The service, or null.
  const ServiceRoute* FindService(uint32_t service_id) const {
    auto it = services_.find(service_id);
    return it == services_.end() ? nullptr : &it->second;
  }

  const absl::flat_hash_map<uint32_t, ServiceRoute>& services() const { return services_; }
  size_t session_count() const { return sessions_.size(); }
  size_t workers() const { return workers_; }

 private:
  RouteTable() = default;

  uint64_t version_ = 0;
  DataplaneRole role_ = DataplaneRole::kRelay;
  size_t workers_ = 1;
  absl::flat_hash_map<uint32_t, ServiceRoute> services_;
  std::vector<std::unique_ptr<SessionRoute>> sessions_;
  absl::flat_hash_map<uint64_t, SessionRef> sessions_by_id_;
};

}  // namespace ferry::dataplane
