// How ferryctl shows the admin API's answers as text: kubectl-style tables
// for services, leases and sessions, and the `ferryctl status` dashboard.
// Pure functions of the protos (and of `now`, for "connected for" and
// "expires in"), so they are unit-tested without an Intermediate.
#pragma once

#include <string>

#include "absl/time/time.h"
#include "ferry/v1/admin.pb.h"
#include "ferry/v1/common.pb.h"
#include "google/protobuf/message.h"

namespace ferry::cli {

// "tcp", "udp", "icmp"; "-" for PROTOCOL_UNSPECIFIED.
std::string ProtocolName(v1::Protocol protocol);
// "healthy", "unhealthy", "unknown"; "-" for HEALTH_STATE_UNSPECIFIED.
std::string HealthName(v1::HealthState health);
// "relay", "direct"; "-" for SESSION_PATH_UNSPECIFIED.
std::string SessionPathName(v1::SessionPath path);

// A duration rounded down to whole seconds and shown with its two largest
// units: "0s", "42s", "5m3s", "2h7m", "3d4h". Negative durations show as "0s".
std::string ShortDuration(absl::Duration d);

// A service's backends in one cell: "ADDRESS (health)" joined by ", ", with
// "from SOURCE" when the source differs from the address (dns://, srv://):
// "10.0.0.5:80 (healthy, from dns://web.internal:80)". When the Intermediate
// has no observed state yet, the spec's addresses with "(unknown)". "-" when
// there are none.
std::string BackendsCell(const v1::Service& service);

// TENANT NAME ID PROTO PORT VIP HEALTH CONNECTOR ORIGIN BACKENDS
std::string ServicesTable(const v1::ListServicesResponse& services);
// TENANT SERVICE VIP POOL PINNED
std::string LeasesTable(const v1::ListLeasesResponse& leases);
// SESSION TENANT SERVICE AGENT CONNECTOR RELAY PATH EXPIRES IN
std::string SessionsTable(const v1::ListSessionsResponse& sessions, absl::Time now);

// The `ferryctl status` dashboard: the Intermediate (version, uptime, route
// version, trust domain, service counts), then sections CONNECTORS, RELAYS,
// SERVICES and SESSIONS, each a table headed by its count. A connector whose
// config reload was refused adds a line
//   "CONFIG ERROR  connector <tenant>/<name> since <UTC time>: <error>"
// under the connectors table, and a summary line "!! N connector(s) with a
// CONFIG ERROR" at the very top, so it cannot be missed.
std::string StatusText(const v1::GetStatusResponse& status,
                       const v1::ListServicesResponse& services,
                       const v1::ListSessionsResponse& sessions, absl::Time now);

// The proto3 JSON form of `message` (lowerCamelCase names, as grpcurl prints
// them), indented, with fields at their default values included so scripts
// find every key (e.g. "sessions": []), ending in a newline.
std::string MessageToJson(const google::protobuf::Message& message);

// The same three answers as one JSON object {"status": {...}, "services":
// [...], "sessions": [...]}, each part in the proto3 JSON form.
std::string StatusJson(const v1::GetStatusResponse& status,
                       const v1::ListServicesResponse& services,
                       const v1::ListSessionsResponse& sessions);

}  // namespace ferry::cli
