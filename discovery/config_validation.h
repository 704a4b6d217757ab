// Validation of Ferry's process configs (proto/ferry/v1/config.proto) after parsing: the rules
// a schema cannot say (addresses, CIDRs, names, positive durations, unique service names).
//
// Every function returns OK or INVALID_ARGUMENT "<field path>: <reason>", the path in proto
// field names with 0-based indices ("services[2].backends[0].address"), for the first problem
// found, with a reason that says what to fix. Fields left empty mean "use the default" and
// are valid. The functions are pure and may be called from any thread. The config loader
// (config_loader.h) adds the file name and line; flags that override a file go through the
// same address and name checks here.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "ferry/v1/config.pb.h"

namespace ferry::discovery {

// Intermediate: listen, admin_listen and dns_listen are listen addresses and distinct; tls
// is all three files or none; trust_domain is a SPIFFE trust domain; every vip_pools[i].cidr
// an IPv4 CIDR from /8 to /30 with no host bits, pools do not overlap, their tenants are DNS
// labels; dns_zone a DNS name; dns_ttl, connector_grace, keepalive_interval positive;
// operator_tenant a DNS label.
absl::Status ValidateConfig(const v1::IntermediateConfig& config);

// Relay: at least one intermediates entry, each host:port; tls all or none; listen and
// admin_listen listen addresses and distinct; workers at most kMaxWorkers; flow_idle_timeout
// positive.
absl::Status ValidateConfig(const v1::RelayConfig& config);

// Connector: intermediates, tls, listen and admin_listen as for the relay; each service by
// ferry::ValidateServiceSpec(spec, "services[i]"); service names unique; all tenants that are
// set agree (a connector serves one tenant); dns_min_ttl and dns_max_ttl positive and
// min <= max (unset ones count as their defaults, 5s and 300s).
absl::Status ValidateConfig(const v1::ConnectorConfig& config);

// Agent: intermediates and tls as for the relay; each exposure names a valid service (a DNS
// label) and, when set, a listen address not used by another exposure (port 0 aside).
absl::Status ValidateConfig(const v1::AgentConfig& config);

// Most relay worker threads a config may ask for.
inline constexpr uint32_t kMaxWorkers = 1024;

// A local address to bind: "host:port" or "[v6]:port", port 0 to 65535 (0: the kernel picks),
// host an IP literal or a host name. Errors name `path`.
absl::Status ValidateListenAddress(absl::string_view address, absl::string_view path);

// A remote address to dial: as a listen address, but the port is 1 to 65535.
absl::Status ValidateDialAddress(absl::string_view address, absl::string_view path);

// A DNS name such as "ferry.internal": dot-separated labels of a-z, 0-9 and '-' (1 to 63
// characters, no leading or trailing '-'), at most 253 characters, one optional trailing dot.
absl::Status ValidateDnsName(absl::string_view name, absl::string_view path);

// An IPv4 network: "a.b.c.d/n", n from 8 to 30, no host bits set. On success fills the
// network address (host byte order) and prefix length.
absl::Status ParseVipPoolCidr(absl::string_view cidr, absl::string_view path, uint32_t* network,
                              int* prefix_length);

}  // namespace ferry::discovery
