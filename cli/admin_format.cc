#include "cli/admin_format.h"

#include <cstdint>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "cli/table_printer.h"
#include "common/proto_time.h"
#include "google/protobuf/util/json_util.h"

namespace ferry::cli {
namespace {

std::string FormatUtc(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

// "acme/edge-1", or just the name when the tenant is unknown.
std::string PeerName(const v1::Peer& peer) {
  if (peer.identity().tenant().empty()) return peer.identity().name();
  return absl::StrCat(peer.identity().tenant(), "/", peer.identity().name());
}

std::string PeersTable(const google::protobuf::RepeatedPtrField<v1::Peer>& peers, absl::Time now) {
  TablePrinter table({"TENANT", "NAME", "ADDRESS", "VERSION", "CONNECTED FOR", "ACKED ROUTES"});
  for (const v1::Peer& peer : peers) {
    table.AddRow({peer.identity().tenant(), peer.identity().name(), peer.address(), peer.version(),
                  peer.has_connected_at()
                      ? ShortDuration(now - FromTimestampProto(peer.connected_at()))
                      : "",
                  absl::StrCat(peer.acked_route_version())});
  }
  return table.Render();
}

// The JSON array of `items`, each in its proto3 JSON form.
template <typename Repeated>
std::string JsonArray(const Repeated& items) {
  std::vector<std::string> parts;
  for (const auto& item : items) {
    parts.push_back(std::string(absl::StripTrailingAsciiWhitespace(MessageToJson(item))));
  }
  if (parts.empty()) return "[]";
  return absl::StrCat("[", absl::StrJoin(parts, ", "), "]");
}

}  // namespace

std::string ProtocolName(v1::Protocol protocol) {
  switch (protocol) {
    case v1::PROTOCOL_TCP:
      return "tcp";
    case v1::PROTOCOL_UDP:
      return "udp";
    case v1::PROTOCOL_ICMP:
      return "icmp";
    default:
      return "-";
  }
}

std::string HealthName(v1::HealthState health) {
  switch (health) {
    case v1::HEALTH_STATE_HEALTHY:
      return "healthy";
    case v1::HEALTH_STATE_UNHEALTHY:
      return "unhealthy";
    case v1::HEALTH_STATE_UNKNOWN:
      return "unknown";
    default:
      return "-";
  }
}

std::string SessionPathName(v1::SessionPath path) {
  switch (path) {
    case v1::SESSION_PATH_RELAY:
      return "relay";
    case v1::SESSION_PATH_DIRECT:
      return "direct";
    default:
      return "-";
  }
}

std::string ShortDuration(absl::Duration d) {
  int64_t seconds = absl::ToInt64Seconds(d);
  if (seconds <= 0) return "0s";
  struct Unit {
    int64_t seconds;
    const char* suffix;
  };
  constexpr Unit kUnits[] = {{86400, "d"}, {3600, "h"}, {60, "m"}, {1, "s"}};
  std::string text;
  int shown = 0;
  for (const Unit& unit : kUnits) {
    int64_t count = seconds / unit.seconds;
    seconds %= unit.seconds;
    if (shown == 0 && count == 0) continue;
    // A zero second unit is left out: "2h", not "2h0m".
    if (count > 0) absl::StrAppend(&text, count, unit.suffix);
    if (++shown == 2) break;
  }
  return text;
}

std::string BackendsCell(const v1::Service& service) {
  std::vector<std::string> cells;
  if (service.backends_size() == 0) {
    for (const v1::BackendSpec& spec : service.spec().backends()) {
      cells.push_back(absl::StrCat(spec.address(), " (unknown)"));
    }
  }
  for (const v1::BackendStatus& backend : service.backends()) {
    std::string cell = absl::StrCat(backend.address(), " (", HealthName(backend.health()));
    if (!backend.source().empty() && backend.source() != backend.address()) {
      absl::StrAppend(&cell, ", from ", backend.source());
    }
    cells.push_back(absl::StrCat(cell, ")"));
  }
  return cells.empty() ? "-" : absl::StrJoin(cells, ", ");
}

std::string ServicesTable(const v1::ListServicesResponse& services) {
  TablePrinter table({"TENANT", "NAME", "ID", "PROTO", "PORT", "VIP", "HEALTH", "CONNECTOR",
                      "ORIGIN", "BACKENDS"});
  for (const v1::Service& service : services.services()) {
    const v1::ServiceSpec& spec = service.spec();
    table.AddRow({spec.tenant(), spec.name(), absl::StrCat(service.id()),
                  ProtocolName(spec.protocol()), spec.port() == 0 ? "" : absl::StrCat(spec.port()),
                  service.vip(), HealthName(service.health()), service.connector(),
                  service.origin(), BackendsCell(service)});
  }
  return table.Render();
}

std::string LeasesTable(const v1::ListLeasesResponse& leases) {
  TablePrinter table({"TENANT", "SERVICE", "VIP", "POOL", "PINNED"});
  for (const v1::Lease& lease : leases.leases()) {
    table.AddRow({lease.tenant(), lease.service(), lease.vip(), lease.pool(),
                  lease.pinned() ? "yes" : "no"});
  }
  return table.Render();
}

std::string SessionsTable(const v1::ListSessionsResponse& sessions, absl::Time now) {
  TablePrinter table(
      {"SESSION", "TENANT", "SERVICE", "AGENT", "CONNECTOR", "RELAY", "PATH", "EXPIRES IN"});
  for (const v1::SessionInfo& session : sessions.sessions()) {
    table.AddRow({session.session_id(), session.tenant(), session.service(), session.agent(),
                  session.connector(), session.relay(), SessionPathName(session.path()),
                  session.has_expires_at()
                      ? ShortDuration(FromTimestampProto(session.expires_at()) - now)
                      : ""});
  }
  return table.Render();
}

std::string StatusText(const v1::GetStatusResponse& status,
                       const v1::ListServicesResponse& services,
                       const v1::ListSessionsResponse& sessions, absl::Time now) {
  std::string text;
  int config_errors = 0;
  for (const v1::Peer& peer : status.connectors()) {
    if (!peer.config_error().empty()) ++config_errors;
  }
  if (config_errors > 0) {
    absl::StrAppend(&text, "!! ", config_errors,
                    " connector(s) with a CONFIG ERROR (see below)\n\n");
  }
  absl::StrAppend(
      &text, "Intermediate  version ", status.version().empty() ? "-" : status.version(), ", up ",
      ShortDuration(FromDurationProto(status.uptime())), ", route version ", status.route_version(),
      ", trust domain ", status.trust_domain().empty() ? "-" : status.trust_domain(), "\n");
  absl::StrAppend(&text, "Services      ", status.services_healthy(), " healthy, ",
                  status.services_unhealthy(), " unhealthy, ", status.services_unknown(),
                  " unknown\n");

  absl::StrAppend(&text, "\nCONNECTORS (", status.connectors_size(), ")\n");
  if (status.connectors_size() > 0) {
    absl::StrAppend(&text, PeersTable(status.connectors(), now));
    for (const v1::Peer& peer : status.connectors()) {
      if (peer.config_error().empty()) continue;
      absl::StrAppend(&text, "CONFIG ERROR  connector ", PeerName(peer));
      if (peer.has_config_error_at()) {
        absl::StrAppend(&text, " since ", FormatUtc(FromTimestampProto(peer.config_error_at())));
      }
      absl::StrAppend(&text, ": ", peer.config_error(),
                      "\n              (the connector keeps serving its last good config)\n");
    }
  }
  absl::StrAppend(&text, "\nRELAYS (", status.relays_size(), ")\n");
  if (status.relays_size() > 0) absl::StrAppend(&text, PeersTable(status.relays(), now));
  absl::StrAppend(&text, "\nSERVICES (", services.services_size(), ")\n");
  if (services.services_size() > 0) absl::StrAppend(&text, ServicesTable(services));
  absl::StrAppend(&text, "\nSESSIONS (", sessions.sessions_size(), ")\n");
  if (sessions.sessions_size() > 0) absl::StrAppend(&text, SessionsTable(sessions, now));
  return text;
}

std::string MessageToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  std::string json;
  auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    return absl::StrCat("{\"error\": \"", absl::CEscape(status.ToString()), "\"}\n");
  }
  if (json.empty() || json.back() != '\n') json += "\n";
  return json;
}

std::string StatusJson(const v1::GetStatusResponse& status,
                       const v1::ListServicesResponse& services,
                       const v1::ListSessionsResponse& sessions) {
  return absl::StrCat("{\"status\": ", absl::StripTrailingAsciiWhitespace(MessageToJson(status)),
                      ",\n\"services\": ", JsonArray(services.services()),
                      ",\n\"sessions\": ", JsonArray(sessions.sessions()), "}\n");
}

}  // namespace ferry::cli
