#include "common/service_spec_validation.h"

#include <arpa/inet.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/naming.h"

namespace ferry {
namespace {

constexpr int kMaxBackends = 64;

absl::Status FieldError(absl::string_view path, absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(path, ".", field, ": ", why));
}

int64_t Millis(const google::protobuf::Duration& d) {
  return d.seconds() * 1000 + d.nanos() / 1000000;
}

absl::Status ValidateBackendAddress(const v1::ServiceSpec& spec, absl::string_view address,
                                    absl::string_view path, absl::string_view field) {
  if (address.empty()) return FieldError(path, field, "is empty; give host:port");
  if (absl::StartsWith(address, "srv://")) {
    const absl::string_view name = address.substr(6);
    if (!absl::StartsWith(name, "_") || name.find("._") == absl::string_view::npos) {
      return FieldError(path, field,
                        absl::StrCat("\"", address, "\" is not srv://_service._proto.name"));
    }
    return absl::OkStatus();
  }
  absl::string_view host_port = address;
  if (absl::StartsWith(address, "dns://")) host_port = address.substr(6);
  std::string host;
  uint16_t port = 0;
  if (spec.protocol() == v1::PROTOCOL_ICMP && host_port.find(':') == absl::string_view::npos) {
    return absl::OkStatus();  // ICMP backends need no port.
  }
  if (!SplitHostPort(host_port, &host, &port)) {
    return FieldError(path, field,
                      absl::StrCat("\"", address,
                                   "\" is not host:port with a port from 1 to 65535 (or "
                                   "dns://name:port, srv://_service._proto.name)"));
  }
  return absl::OkStatus();
}

}  // namespace

bool SplitHostPort(absl::string_view address, std::string* host, uint16_t* port, PortRule rule) {
  return ParseHostPort(address, rule, host, port).ok();
}

absl::Status ValidateServiceSpec(const v1::ServiceSpec& spec, absl::string_view path) {
  if (absl::Status s = ValidateName(NameKind::kService, spec.name()); !s.ok()) {
    return FieldError(path, "name", s.message());
  }
  if (!spec.tenant().empty()) {
    if (absl::Status s = ValidateName(NameKind::kTenant, spec.tenant()); !s.ok()) {
      return FieldError(path, "tenant", s.message());
    }
  }
  if (!spec.connector().empty()) {
    if (absl::Status s = ValidateName(NameKind::kComponent, spec.connector()); !s.ok()) {
      return FieldError(path, "connector", s.message());
    }
  }
  if (spec.protocol() == v1::PROTOCOL_UNSPECIFIED) {
    return FieldError(path, "protocol",
                      "is not set; use PROTOCOL_UDP, PROTOCOL_TCP or PROTOCOL_ICMP");
  }
  if (spec.port() > 65535) return FieldError(path, "port", "must be from 1 to 65535");
  if (spec.backends().empty()) return FieldError(path, "backends", "needs at least one backend");
  if (spec.backends_size() > kMaxBackends) {
    return FieldError(path, "backends", absl::StrCat("has more than ", kMaxBackends, " entries"));
  }
  for (int i = 0; i < spec.backends_size(); ++i) {
    const std::string field = absl::StrCat("backends[", i, "].address");
    if (absl::Status s = ValidateBackendAddress(spec, spec.backends(i).address(), path, field);
        !s.ok()) {
      return s;
    }
  }
  if (!spec.pinned_vip().empty()) {
    in_addr addr;
    if (inet_pton(AF_INET, spec.pinned_vip().c_str(), &addr) != 1) {
      return FieldError(path, "pinned_vip",
                        absl::StrCat("\"", spec.pinned_vip(), "\" is not an IPv4 address"));
    }
  }
  if (spec.has_health_check()) {
    const v1::HealthCheck& hc = spec.health_check();
    if (hc.has_interval() && Millis(hc.interval()) < 100) {
      return FieldError(path, "health_check.interval", "must be at least 100ms");
    }
    if (hc.has_interval() && hc.has_timeout() && Millis(hc.timeout()) > Millis(hc.interval())) {
      return FieldError(path, "health_check.timeout", "must not exceed the interval");
    }
    if (hc.kind_case() == v1::HealthCheck::KIND_NOT_SET) {
      return FieldError(path, "health_check",
                        "names no checker; set one of tcp, http, udp, icmp, grpc");
    }
  }
  return absl::OkStatus();
}

}  // namespace ferry
