// ferry.v1.Registry: the connector's session stream (callback API). Each
// stream authenticates its caller as a connector, attaches it to the
// ServiceRegistry on Hello, and then relays keepalives and health reports in
// and commands (Welcome, ApiServices, keepalive acks, agents' signaling) out,
// one write in flight at a time from a bounded queue.
//
// A ConnectorMessage.signal (Answer or Candidate, after Hello) goes to the
// SignalHub as from the stream's connector identity. A refused one (not this
// connector's session, expired, malformed, ...) is counted and logged by the
// hub and otherwise dropped: the stream stays up and nothing is sent back
// (ConnectorCommand has no error kind). A connector that needs the status
// calls Sessions.Signal instead.
#pragma once

#include "controlplane/peer_authenticator.h"
#include "controlplane/service_registry.h"
#include "controlplane/signal_hub.h"
#include "ferry/v1/registry.grpc.pb.h"

namespace ferry {

class RegistryService final : public v1::Registry::CallbackService {
 public:
  // All must outlive the service (and every stream it started).
  RegistryService(ServiceRegistry* registry, const PeerAuthenticator* auth, SignalHub* signals)
      : registry_(registry), auth_(auth), signals_(signals) {}

  grpc::ServerBidiReactor<v1::ConnectorMessage, v1::ConnectorCommand>* ConnectorSession(
      grpc::CallbackServerContext* context) override;

 private:
  ServiceRegistry* const registry_;
  const PeerAuthenticator* const auth_;
  SignalHub* const signals_;
};

}  // namespace ferry
