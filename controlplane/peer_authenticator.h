// Who is calling, and may they? Every Intermediate RPC handler starts with
// PeerAuthenticator::Authorize, which reads the verified client certificate's
// SPIFFE URI SAN, checks the trust domain and the caller's role against the
// method's allowed roles, and counts and logs every refusal with its reason and
// the peer's address and identity.
//
// In --insecure_dev_mode (plaintext, loopback only) there is no certificate;
// the caller states its SPIFFE ID in the `x-ferry-dev-identity` metadata
// header instead. That mode exists for local experiments only.
#pragma once

#include <initializer_list>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/spiffe_id.h"
#include "controlplane/intermediate_metrics.h"
#include "grpcpp/server_context.h"

namespace ferry {

// An authenticated caller.
struct Peer {
  SpiffeId id;
  // "ipv4:127.0.0.1:41234" as gRPC reports it.
  std::string address;
};

// Metadata key carrying the identity in --insecure_dev_mode.
inline constexpr char kDevIdentityHeader[] = "x-ferry-dev-identity";

class PeerAuthenticator {
 public:
  // `metrics` must outlive this object. `operator_tenant` names the tenant
  // whose admins may act on every tenant ("" for none).
  PeerAuthenticator(std::string trust_domain, std::string operator_tenant, bool insecure_dev_mode,
                    IntermediateMetrics* metrics);

  // The caller, if its certificate carries a valid SPIFFE ID of this trust
  // domain and its role is in `roles`. Otherwise UNAUTHENTICATED (no_uri_san,
  // malformed_uri_san, wrong_trust_domain) or PERMISSION_DENIED (wrong_role),
  // with a message that says what is wrong and what `method` needs.
  // Thread-safe.
  absl::StatusOr<Peer> Authorize(const grpc::ServerContextBase& context, absl::string_view method,
                                 std::initializer_list<absl::string_view> roles) const;

  // OK when `peer` may act on `tenant`'s objects (same tenant, or an admin of
  // the operator tenant); else PERMISSION_DENIED (other_tenant), counted and
  // logged. `what` names the object for the message ("service \"ollama-api\"",
  // "the services").
  absl::Status CheckTenant(const Peer& peer, absl::string_view tenant,
                           absl::string_view what) const;

  // True for an admin of the operator tenant.
  bool IsOperator(const Peer& peer) const;

 private:
  absl::Status Refuse(absl::StatusCode code, absl::string_view reason, absl::string_view peer,
                      absl::string_view message) const;

  const std::string trust_domain_;
  const std::string operator_tenant_;
  const bool insecure_dev_mode_;
  IntermediateMetrics* const metrics_;
};

}  // namespace ferry
