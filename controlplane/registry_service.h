// ferry.v1.Registry: the connector's session stream (callback API). Each
// stream authenticates its caller as a connector, attaches it to the
// ServiceRegistry on Hello, and then relays keepalives and health reports in
// and commands (Welcome, ApiServices, keepalive acks) out, one write in flight
// at a time from a bounded queue.
#pragma once

#include "controlplane/peer_authenticator.h"
#include "controlplane/service_registry.h"
#include "ferry/v1/registry.grpc.pb.h"

namespace ferry {

class RegistryService final : public v1::Registry::CallbackService {
 public:
  // Both must outlive the service.
  RegistryService(ServiceRegistry* registry, const PeerAuthenticator* auth)
      : registry_(registry), auth_(auth) {}

  grpc::ServerBidiReactor<v1::ConnectorMessage, v1::ConnectorCommand>* ConnectorSession(
      grpc::CallbackServerContext* context) override;

 private:
  ServiceRegistry* const registry_;
  const PeerAuthenticator* const auth_;
};

}  // namespace ferry
