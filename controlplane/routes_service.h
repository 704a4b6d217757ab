// ferry.v1.Routes: WatchRoutes for relays and connectors (callback API).
//
// The client's first message (the subscription) announces its data-plane
// addresses (RouteAck.udp_address and stream_address), recorded in the
// registry until the stream ends; a bad one ends the stream INVALID_ARGUMENT
// naming the field. Each stream then sends the caller's full snapshot (after
// the addresses are recorded) and again after every registry change, one
// write in flight (changes that arrive meanwhile coalesce into the next
// write). Later messages' addresses are ignored. ACKs are timed against the moment their version
// was created (ferry_route_push_latency_seconds); NACKs are counted and logged, and the client
// keeps its last good snapshot.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "controlplane/peer_authenticator.h"
#include "controlplane/service_registry.h"
#include "ferry/v1/admin.pb.h"
#include "ferry/v1/routes.grpc.pb.h"

namespace ferry {

class RoutesService final : public v1::Routes::CallbackService {
 public:
  // All must outlive the service.
  RoutesService(ServiceRegistry* registry, const PeerAuthenticator* auth,
                IntermediateMetrics* metrics)
      : registry_(registry), auth_(auth), metrics_(metrics) {}

  grpc::ServerBidiReactor<v1::RouteAck, v1::RouteSnapshot>* WatchRoutes(
      grpc::CallbackServerContext* context) override;

  // Relays with an open WatchRoutes stream.
  std::vector<v1::Peer> ListRelays();

  // Book-keeping by the streams (not part of the API).
  void AddWatcher(const void* stream, const v1::Peer& peer);
  void UpdateWatcherAck(const void* stream, uint64_t version);
  void RemoveWatcher(const void* stream);

 private:
  ServiceRegistry* const registry_;
  const PeerAuthenticator* const auth_;
  IntermediateMetrics* const metrics_;

  absl::Mutex mu_;
  std::map<const void*, v1::Peer> watchers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry
