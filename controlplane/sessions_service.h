// ferry.v1.Sessions: data-plane sessions for agents (callback API).
//
// OpenSession (role agent) resolves the requested service within the caller's
// tenant and opens a session through ServiceRegistry::OpenSession. A service
// of another tenant ("<service>.<tenant>") is PERMISSION_DENIED: grants
// between tenants do not exist yet, so a session only ever joins an agent to
// its own tenant's services. Every refusal is counted in
// ferry_sessions_refused_total{reason}; cross-tenant attempts are also
// counted as auth failures (other_tenant) and logged with the caller.
//
// Signal and WatchSignals relay direct-path signaling through a SignalHub
// (controlplane/signal_hub.h), which owns the ownership checks, the agents'
// mailboxes and the counting; this service only authenticates the caller and
// streams the agent's mailbox.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "controlplane/intermediate_metrics.h"
#include "controlplane/peer_authenticator.h"
#include "controlplane/service_registry.h"
#include "controlplane/signal_hub.h"
#include "ferry/v1/sessions.grpc.pb.h"

namespace ferry {

// A service named in an OpenSessionRequest.
struct ServiceRef {
  std::string service;
  // Empty when the request named no tenant.
  std::string tenant;
};

// Parses "<service>" or "<service>.<tenant>" (both DNS labels).
// INVALID_ARGUMENT "service: ..." saying what is wrong otherwise.
absl::StatusOr<ServiceRef> ParseServiceRef(const std::string& text);

class SessionsService final : public v1::Sessions::CallbackService {
 public:
  // All must outlive the service (and every stream it started).
  SessionsService(ServiceRegistry* registry, const PeerAuthenticator* auth,
                  IntermediateMetrics* metrics, SignalHub* signals)
      : registry_(registry), auth_(auth), metrics_(metrics), signals_(signals) {}

  // Role agent. INVALID_ARGUMENT for a malformed name; PERMISSION_DENIED for
  // another role or another tenant's service; NOT_FOUND, UNAVAILABLE,
  // RESOURCE_EXHAUSTED as ServiceRegistry::OpenSession.
  grpc::ServerUnaryReactor* OpenSession(grpc::CallbackServerContext* context,
                                        const v1::OpenSessionRequest* request,
                                        v1::OpenSessionResponse* response) override;
  // Role agent (Offer, Candidate) or connector (Answer, Candidate): the
  // refusals of SignalHub::Signal.
  grpc::ServerUnaryReactor* Signal(grpc::CallbackServerContext* context,
                                   const v1::SignalMessage* request,
                                   v1::SignalAck* response) override;
  // Role agent: streams the session's mailbox (SignalHub::Watch). Refused
  // at once as SignalHub::Watch refuses; otherwise runs until the session
  // expires or ends (FAILED_PRECONDITION), a newer watch replaces it
  // (ABORTED) or the agent cancels.
  grpc::ServerWriteReactor<v1::SignalMessage>* WatchSignals(
      grpc::CallbackServerContext* context, const v1::WatchSignalsRequest* request) override;

 private:
  // Opens the session; the status is what the caller gets.
  absl::Status Open(const grpc::CallbackServerContext& context,
                    const v1::OpenSessionRequest& request, v1::OpenSessionResponse* response);

  ServiceRegistry* const registry_;
  const PeerAuthenticator* const auth_;
  IntermediateMetrics* const metrics_;
  SignalHub* const signals_;
};

}  // namespace ferry
