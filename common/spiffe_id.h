// SPIFFE identities of Ferry's parties:
//   spiffe://<trust-domain>/tenant/<tenant>/<role>/<name>
// with role one of connector, agent, relay, admin (and intermediate, for the
// control plane's own server certificate). The certificate's URI SAN carries
// it; this file parses and formats it and nothing else.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ferry/v1/common.pb.h"

namespace ferry {

struct SpiffeId {
  std::string trust_domain;
  std::string tenant;
  // "connector", "agent", "relay", "admin" or "intermediate".
  std::string role;
  std::string name;

  // The URI form, spiffe://<trust_domain>/tenant/<tenant>/<role>/<name>.
  std::string ToUri() const;
  // The role as the API enum; ROLE_UNSPECIFIED for "intermediate".
  v1::Role ApiRole() const;
  // The identity as the API message.
  v1::Identity ToProto() const;
};

// Parses a URI SAN. INVALID_ARGUMENT with the reason for anything else: not a
// spiffe:// URI, wrong path shape, unknown role, a tenant or name that is not
// a DNS label, query/fragment/port/userinfo parts.
absl::StatusOr<SpiffeId> ParseSpiffeId(absl::string_view uri);

// True for the roles a certificate may carry.
bool IsKnownRole(absl::string_view role);

}  // namespace ferry
