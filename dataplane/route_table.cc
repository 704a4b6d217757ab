#include "dataplane/route_table.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace ferry::dataplane {
namespace {

absl::Span<const uint8_t> KeyBytes(const std::string& key) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(key.data()), key.size());
}

absl::Status MakeAeads(const v1::HopKey& hop, HopRole role, size_t workers, const std::string& path,
                       std::vector<HopAead>* out) {
  if (hop.session_id() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ".session_id: must not be 0"));
  }
  if (hop.key().size() != kAeadKeySize) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ".key: must be ", kAeadKeySize, " bytes, got ", hop.key().size()));
  }
  out->reserve(workers);
  for (size_t w = 0; w < workers; ++w) {
    absl::StatusOr<HopAead> aead =
        HopAead::Create(AeadAlgorithm::kAes256Gcm, KeyBytes(hop.key()), role);
    if (!aead.ok()) return aead.status();
    out->push_back(*std::move(aead));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<const RouteTable>> RouteTable::Build(
    const v1::RouteSnapshot& snapshot, DataplaneRole role, size_t workers) {
  if (workers == 0) return absl::InvalidArgumentError("workers must be at least 1");
  std::shared_ptr<RouteTable> table(new RouteTable());
  table->version_ = snapshot.version();
  table->role_ = role;
  table->workers_ = workers;

  for (int i = 0; i < snapshot.services_size(); ++i) {
    const v1::RouteService& in = snapshot.services(i);
    const std::string path = absl::StrCat("services[", i, "]");
    ServiceRoute route;
    route.service_id = in.service_id();
    route.name = in.name();
    route.tenant = in.tenant();
    route.protocol = in.protocol();
    route.port = in.port();
    if (role == DataplaneRole::kConnector) {
      for (int b = 0; b < in.backends_size(); ++b) {
        // ICMP backends are bare hosts (no port): give the parser a stand-in.
        const bool bare_icmp_host =
            in.protocol() == v1::PROTOCOL_ICMP && in.backends(b).find(':') == std::string::npos;
        absl::StatusOr<SocketAddress> address = ParseSocketAddress(
            bare_icmp_host ? absl::StrCat(in.backends(b), ":1") : in.backends(b), true);
        if (!address.ok()) {
          return absl::InvalidArgumentError(
              absl::StrCat(path, ".backends[", b, "]: ", address.status().message()));
        }
        route.backends.push_back(*address);
        route.backend_names.push_back(in.backends(b));
      }
    }
    if (!table->services_.emplace(route.service_id, std::move(route)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ".service_id: ", in.service_id(), " appears twice"));
    }
  }

  for (int i = 0; i < snapshot.sessions_size(); ++i) {
    const v1::RouteSession& in = snapshot.sessions(i);
    const std::string path = absl::StrCat("sessions[", i, "]");
    if (table->services_.find(in.service_id()) == table->services_.end()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ".service_id: ", in.service_id(),
                                                     " is not a service of this snapshot"));
    }
    auto route = std::make_unique<SessionRoute>();
    route->service_id = in.service_id();
    route->tenant = in.tenant();
    route->agent = in.agent();
    route->connector_session_id = in.connector_hop().session_id();
    if (role == DataplaneRole::kRelay) {
      route->agent_session_id = in.agent_hop().session_id();
      if (absl::Status s = MakeAeads(in.agent_hop(), HopRole::kResponder, workers,
                                     path + ".agent_hop", &route->agent_aead);
          !s.ok()) {
        return s;
      }
      if (absl::Status s = MakeAeads(in.connector_hop(), HopRole::kInitiator, workers,
                                     path + ".connector_hop", &route->connector_aead);
          !s.ok()) {
        return s;
      }
      // Empty while the serving connector is away (its frames then drop as
      // no_route); the session stays so that it works again when it returns.
      if (!in.connector_address().empty()) {
        absl::StatusOr<SocketAddress> udp = ParseSocketAddress(in.connector_address());
        if (!udp.ok()) {
          return absl::InvalidArgumentError(
              absl::StrCat(path, ".connector_address: ", udp.status().message()));
        }
        route->connector_udp = *udp;
      }
      route->connector_stream_address = in.connector_stream_address();
    } else {
      if (absl::Status s = MakeAeads(in.connector_hop(), HopRole::kResponder, workers,
                                     path + ".connector_hop", &route->connector_aead);
          !s.ok()) {
        return s;
      }
    }
    const SessionRoute* raw = route.get();
    table->sessions_.push_back(std::move(route));
    if (role == DataplaneRole::kRelay &&
        !table->sessions_by_id_.emplace(raw->agent_session_id, SessionRef{raw, Hop::kAgent})
             .second) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ".agent_hop.session_id: used by another hop"));
    }
    if (!table->sessions_by_id_.emplace(raw->connector_session_id, SessionRef{raw, Hop::kConnector})
             .second) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ".connector_hop.session_id: used by another hop"));
    }
  }
  return std::shared_ptr<const RouteTable>(std::move(table));
}

}  // namespace ferry::dataplane
