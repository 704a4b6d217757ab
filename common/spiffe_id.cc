#include "common/spiffe_id.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/naming.h"

namespace ferry {
namespace {

constexpr absl::string_view kScheme = "spiffe://";
constexpr size_t kMaxUriLength = 2048;

bool IsTrustDomainChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

}  // namespace

bool IsKnownRole(absl::string_view role) {
  return role == "connector" || role == "agent" || role == "relay" || role == "admin" ||
         role == "intermediate";
}

std::string SpiffeId::ToUri() const {
  return absl::StrCat(kScheme, trust_domain, "/tenant/", tenant, "/", role, "/", name);
}

v1::Role SpiffeId::ApiRole() const {
  if (role == "connector") return v1::ROLE_CONNECTOR;
  if (role == "agent") return v1::ROLE_AGENT;
  if (role == "relay") return v1::ROLE_RELAY;
  if (role == "admin") return v1::ROLE_ADMIN;
  return v1::ROLE_UNSPECIFIED;
}

v1::Identity SpiffeId::ToProto() const {
  v1::Identity id;
  id.set_trust_domain(trust_domain);
  id.set_tenant(tenant);
  id.set_role(ApiRole());
  id.set_name(name);
  return id;
}

absl::StatusOr<SpiffeId> ParseSpiffeId(absl::string_view uri) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("identity URI \"", uri.substr(0, 200), "\" is not a Ferry SPIFFE ID: ", why));
  };
  if (uri.size() > kMaxUriLength) return bad("too long");
  if (!absl::StartsWith(uri, kScheme)) return bad("it must start with spiffe://");
  absl::string_view rest = uri.substr(kScheme.size());
  if (rest.find_first_of("?#") != absl::string_view::npos) {
    return bad("query and fragment parts are not allowed");
  }
  const size_t slash = rest.find('/');
  if (slash == absl::string_view::npos) return bad("it has no path");
  const absl::string_view trust_domain = rest.substr(0, slash);
  if (trust_domain.empty()) return bad("the trust domain is empty");
  for (char c : trust_domain) {
    if (!IsTrustDomainChar(c)) {
      return bad("the trust domain may hold only a-z, 0-9, '-', '.', '_' (no port or user)");
    }
  }
  const std::vector<absl::string_view> parts = absl::StrSplit(rest.substr(slash + 1), '/');
  if (parts.size() != 4 || parts[0] != "tenant") {
    return bad("the path must be /tenant/<tenant>/<role>/<name>");
  }
  if (!IsKnownRole(parts[2])) {
    return bad(absl::StrCat("unknown role \"", parts[2],
                            "\" (one of connector, agent, relay, admin, intermediate)"));
  }
  if (absl::Status s = ValidateName(NameKind::kTenant, parts[1]); !s.ok()) return bad(s.message());
  if (absl::Status s = ValidateName(NameKind::kComponent, parts[3]); !s.ok()) {
    return bad(s.message());
  }
  return SpiffeId{std::string(trust_domain), std::string(parts[1]), std::string(parts[2]),
                  std::string(parts[3])};
}

}  // namespace ferry
