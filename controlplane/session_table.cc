#include "controlplane/session_table.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/listen_address.h"
#include "common/naming.h"
#include "common/proto_time.h"
#include "google/protobuf/util/time_util.h"
#include "openssl/rand.h"

namespace ferry::controlplane {
namespace {

constexpr size_t kKeyBytes = 32;
// Random 64-bit ids collide with vanishing probability; a source that keeps
// colliding is broken, not unlucky.
constexpr int kIdAttempts = 16;

bool OpenSslRandomBytes(uint8_t* out, size_t size) { return RAND_bytes(out, size) == 1; }

// Why `host` (brackets removed) is neither an IP literal nor a DNS name, or "".
std::string HostProblem(const std::string& host) {
  if (host.find(':') != std::string::npos) {
    in6_addr v6;
    return inet_pton(AF_INET6, host.c_str(), &v6) == 1 ? "" : "not an IPv6 address";
  }
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return "";
  const std::string lower = absl::AsciiStrToLower(host);
  std::vector<absl::string_view> labels = absl::StrSplit(lower, '.');
  for (absl::string_view label : labels) {
    if (!IsValidName(label)) {
      return absl::StrCat("the host is neither an IP address nor a DNS name (label \"", label,
                          "\" is not letters, digits and inner hyphens, 1-63 characters)");
    }
  }
  // A DNS name never ends in an all-numeric label: this is a mistyped IPv4 address.
  if (std::all_of(labels.back().begin(), labels.back().end(), absl::ascii_isdigit)) {
    return "the host is not a valid IPv4 address";
  }
  return "";
}

const char* TransportName(v1::Protocol protocol) {
  return protocol == v1::PROTOCOL_TCP ? "stream_address" : "udp_address";
}

}  // namespace

absl::Status ValidateDataAddress(absl::string_view field, absl::string_view address) {
  if (address.empty()) return absl::OkStatus();
  std::string host;
  uint16_t port = 0;
  absl::Status parsed = ParseHostPort(address, PortRule::kNonZero, &host, &port);
  std::string problem(parsed.message());
  if (parsed.ok()) problem = HostProblem(host);
  if (problem.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      field, " \"", address, "\": ", problem,
      "; announce \"host:port\" with an IP address or DNS name, or leave it empty for none"));
}

absl::StatusOr<std::unique_ptr<SessionTable>> SessionTable::Create(Options options) {
  if (options.ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--session_ttl must be positive (got ", absl::FormatDuration(options.ttl), "), e.g. 1h"));
  }
  if (options.max_sessions_per_agent < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max_sessions_per_agent must be at least 1 (got ", options.max_sessions_per_agent, ")"));
  }
  if (!options.random_bytes) options.random_bytes = OpenSslRandomBytes;
  return std::unique_ptr<SessionTable>(new SessionTable(std::move(options)));
}

absl::StatusOr<bool> SessionTable::SetWatcherAddresses(WatcherRole role, const PartyKey& watcher,
                                                       uint64_t stream, DataAddresses addresses) {
  if (absl::Status s = ValidateDataAddress("udp_address", addresses.udp_address); !s.ok()) {
    return s;
  }
  if (absl::Status s = ValidateDataAddress("stream_address", addresses.stream_address); !s.ok()) {
    return s;
  }
  const DataAddresses before = WatcherAddresses(role, watcher);
  auto& streams = watchers_[WatcherKey{role, watcher}];
  streams.erase(std::remove_if(streams.begin(), streams.end(),
                               [stream](const auto& entry) { return entry.first == stream; }),
                streams.end());
  streams.emplace_back(stream, std::move(addresses));
  return role == WatcherRole::kConnector && WatcherAddresses(role, watcher) != before &&
         ConnectorHasSessions(watcher);
}

bool SessionTable::ClearWatcherAddresses(WatcherRole role, const PartyKey& watcher,
                                         uint64_t stream) {
  auto it = watchers_.find(WatcherKey{role, watcher});
  if (it == watchers_.end()) return false;
  const DataAddresses before = WatcherAddresses(role, watcher);
  auto& streams = it->second;
  streams.erase(std::remove_if(streams.begin(), streams.end(),
                               [stream](const auto& entry) { return entry.first == stream; }),
                streams.end());
  if (streams.empty()) watchers_.erase(it);
  return role == WatcherRole::kConnector && WatcherAddresses(role, watcher) != before &&
         ConnectorHasSessions(watcher);
}

DataAddresses SessionTable::WatcherAddresses(WatcherRole role, const PartyKey& watcher) const {
  auto it = watchers_.find(WatcherKey{role, watcher});
  if (it == watchers_.end() || it->second.empty()) return {};
  return it->second.back().second;
}

bool SessionTable::ConnectorHasSessions(const PartyKey& watcher) const {
  for (const auto& [id, session] : sessions_) {
    if (session.tenant == watcher.tenant && session.connector == watcher.name) return true;
  }
  return false;
}

absl::StatusOr<uint64_t> SessionTable::NewSessionId(const std::set<uint64_t>& taken) {
  for (int attempt = 0; attempt < kIdAttempts; ++attempt) {
    uint8_t bytes[sizeof(uint64_t)];
    if (!options_.random_bytes(bytes, sizeof(bytes))) {
      return absl::InternalError("the random source failed to produce a session id");
    }
    uint64_t id = 0;
    std::memcpy(&id, bytes, sizeof(id));
    if (id != 0 && ids_in_use_.count(id) == 0 && taken.count(id) == 0) return id;
  }
  return absl::InternalError(
      absl::StrCat("the random source gave no unused session id in ", kIdAttempts, " attempts"));
}

absl::StatusOr<v1::HopKey> SessionTable::NewHop(const std::set<uint64_t>& taken) {
  absl::StatusOr<uint64_t> id = NewSessionId(taken);
  if (!id.ok()) return id.status();
  std::string key(kKeyBytes, '\0');
  if (!options_.random_bytes(reinterpret_cast<uint8_t*>(key.data()), key.size())) {
    return absl::InternalError("the random source failed to produce a session key");
  }
  v1::HopKey hop;
  hop.set_session_id(*id);
  hop.set_key(std::move(key));
  return hop;
}

absl::StatusOr<SessionTable::Opened> SessionTable::Open(const OpenRequest& request,
                                                        absl::Time now) {
  const bool tcp = request.protocol == v1::PROTOCOL_TCP;
  const DataAddresses connector =
      WatcherAddresses(WatcherRole::kConnector, PartyKey{request.agent.tenant, request.connector});
  if ((tcp ? connector.stream_address : connector.udp_address).empty()) {
    return absl::UnavailableError(absl::StrCat(
        "service \"", request.service, "\" of tenant \"", request.agent.tenant,
        "\" is served by connector \"", request.connector, "\", which has announced no ",
        TransportName(request.protocol),
        " (it has no Routes.WatchRoutes stream announcing one); retry once its data plane is up"));
  }

  // Live sessions per relay, for the least-loaded choice.
  std::map<PartyKey, int> load;
  for (const auto& [key, streams] : watchers_) {
    if (key.first != WatcherRole::kRelay || streams.empty()) continue;
    const DataAddresses& relay = streams.back().second;
    if (relay.udp_address.empty() || (tcp && relay.stream_address.empty())) continue;
    load.emplace(key.second, 0);
  }
  if (load.empty()) {
    return absl::UnavailableError(
        absl::StrCat("no relay is connected with a udp_address", tcp ? " and a stream_address" : "",
                     " (relays announce them on their Routes.WatchRoutes stream); retry later"));
  }
  for (const auto& [id, session] : sessions_) {
    auto it = load.find(session.relay);
    if (it != load.end() && session.expires_at > now) ++it->second;
  }
  const PartyKey* relay = nullptr;
  int fewest = 0;
  for (const auto& [key, count] : load) {
    const bool better =
        relay == nullptr || count < fewest ||
        (count == fewest && std::tie(key.name, key.tenant) < std::tie(relay->name, relay->tenant));
    if (better) {
      relay = &key;
      fewest = count;
    }
  }

  const int held = LiveSessionsOfAgent(request.agent, now);
  if (held >= options_.max_sessions_per_agent) {
    return absl::ResourceExhaustedError(
        absl::StrCat("agent \"", request.agent.name, "\" of tenant \"", request.agent.tenant,
                     "\" already holds ", held,
                     " live sessions, the limit (--max_sessions_per_agent); reuse "
                     "them until they expire, or raise the limit"));
  }

  absl::StatusOr<v1::HopKey> agent_hop = NewHop({});
  if (!agent_hop.ok()) return agent_hop.status();
  absl::StatusOr<v1::HopKey> connector_hop = NewHop({agent_hop->session_id()});
  if (!connector_hop.ok()) return connector_hop.status();

  Opened opened;
  Session& session = opened.session;
  session.agent_hop = *std::move(agent_hop);
  session.connector_hop = *std::move(connector_hop);
  session.service_id = request.service_id;
  session.tenant = request.agent.tenant;
  session.service = request.service;
  session.agent = request.agent.name;
  session.connector = request.connector;
  session.relay = *relay;
  session.expires_at = now + options_.ttl;
  opened.relay = WatcherAddresses(WatcherRole::kRelay, *relay);
  ids_in_use_.insert(session.agent_hop.session_id());
  ids_in_use_.insert(session.connector_hop.session_id());
  sessions_.emplace(session.agent_hop.session_id(), session);
  return opened;
}

void SessionTable::EraseIds(const Session& session) {
  ids_in_use_.erase(session.agent_hop.session_id());
  ids_in_use_.erase(session.connector_hop.session_id());
  const uint64_t id = session.agent_hop.session_id();
  if (ended_.count(id) == 0) ended_order_.push_back(id);
  ended_[id] = SessionParties{session.tenant, session.agent, session.connector, session.expires_at,
                              /*ended=*/true};
  while (ended_order_.size() > kRememberedEndedSessions) {
    ended_.erase(ended_order_.front());
    ended_order_.pop_front();
  }
}

std::optional<SessionParties> SessionTable::FindParties(uint64_t session_id) const {
  if (auto it = sessions_.find(session_id); it != sessions_.end()) {
    const Session& s = it->second;
    return SessionParties{s.tenant, s.agent, s.connector, s.expires_at, /*ended=*/false};
  }
  if (auto it = ended_.find(session_id); it != ended_.end()) return it->second;
  return std::nullopt;
}

int SessionTable::Expire(absl::Time now) {
  return RetainIf([now](const Session& session) { return session.expires_at > now; });
}

int SessionTable::RetainIf(const std::function<bool(const Session&)>& keep) {
  int removed = 0;
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (keep(it->second)) {
      ++it;
      continue;
    }
    EraseIds(it->second);
    it = sessions_.erase(it);
    ++removed;
  }
  return removed;
}

int SessionTable::LiveSessionsOfAgent(const PartyKey& agent, absl::Time now) const {
  int live = 0;
  for (const auto& [id, session] : sessions_) {
    live +=
        session.tenant == agent.tenant && session.agent == agent.name && session.expires_at > now;
  }
  return live;
}

void SessionTable::AppendRouteSessions(WatcherRole role, const PartyKey& watcher,
                                       v1::RouteSnapshot* snapshot) const {
  for (const auto& [id, session] : sessions_) {
    if (role == WatcherRole::kRelay) {
      if (!(session.relay == watcher)) continue;
      v1::RouteSession* out = snapshot->add_sessions();
      *out->mutable_agent_hop() = session.agent_hop;
      *out->mutable_connector_hop() = session.connector_hop;
      out->set_service_id(session.service_id);
      out->set_tenant(session.tenant);
      out->set_agent(session.agent);
      const DataAddresses connector =
          WatcherAddresses(WatcherRole::kConnector, PartyKey{session.tenant, session.connector});
      out->set_connector_address(connector.udp_address);
      out->set_connector_stream_address(connector.stream_address);
    } else {
      if (session.tenant != watcher.tenant || session.connector != watcher.name) continue;
      // The connector's own hop only: it never holds the agent's key.
      v1::RouteSession* out = snapshot->add_sessions();
      *out->mutable_connector_hop() = session.connector_hop;
      out->set_service_id(session.service_id);
      out->set_tenant(session.tenant);
      out->set_agent(session.agent);
    }
  }
}

std::vector<v1::SessionInfo> SessionTable::List(absl::string_view tenant) const {
  std::vector<const Session*> listed;
  for (const auto& [id, session] : sessions_) {
    if (tenant.empty() || session.tenant == tenant) listed.push_back(&session);
  }
  std::sort(listed.begin(), listed.end(), [](const Session* a, const Session* b) {
    return std::forward_as_tuple(a->tenant, a->service, a->agent, a->agent_hop.session_id()) <
           std::forward_as_tuple(b->tenant, b->service, b->agent, b->agent_hop.session_id());
  });
  std::vector<v1::SessionInfo> out;
  out.reserve(listed.size());
  for (const Session* session : listed) {
    v1::SessionInfo info;
    info.set_session_id(absl::StrFormat("%016x", session->agent_hop.session_id()));
    info.set_tenant(session->tenant);
    info.set_service(session->service);
    info.set_agent(session->agent);
    info.set_connector(session->connector);
    info.set_relay(session->relay.name);
    info.set_path(v1::SESSION_PATH_RELAY);
    *info.mutable_expires_at() = ToTimestampProto(session->expires_at);
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace ferry::controlplane
