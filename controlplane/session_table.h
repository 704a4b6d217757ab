// The Intermediate's data-plane sessions, and the data-plane addresses that
// relays and connectors announce on their Routes.WatchRoutes streams.
//
// A session ties one agent to one service through one relay: two hops
// (agent <-> relay, relay <-> connector), each with its own random non-zero
// 64-bit session id and 32-byte key. The relay is the connected relay with
// the fewest live sessions. Sessions live in memory only (a restart of the
// Intermediate drops them and agents open new ones), expire after a TTL, and
// show up in route snapshots: a relay gets both hops of the sessions assigned
// to it, a connector only its own hop of the sessions of its services (never
// the agent's key).
//
// Thread-compatible, not thread-safe: the owner (ServiceRegistry) guards it
// with its own lock, so that sessions, services and the route version change
// together. Time is passed in by the caller (tests use fixed times).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ferry/v1/admin.pb.h"
#include "ferry/v1/common.pb.h"
#include "ferry/v1/routes.pb.h"
#include "ferry/v1/sessions.pb.h"

namespace ferry::controlplane {

// Roles that watch routes and carry frames.
enum class WatcherRole { kRelay, kConnector };

// A party within its role: the tenant and name of its SPIFFE identity.
struct PartyKey {
  std::string tenant;
  std::string name;

  bool operator<(const PartyKey& other) const {
    return std::tie(tenant, name) < std::tie(other.tenant, other.name);
  }
  bool operator==(const PartyKey& other) const {
    return tenant == other.tenant && name == other.name;
  }
};

// Where a relay or connector takes frames, "host:port" each; empty for none.
struct DataAddresses {
  // UDP datagram frames.
  std::string udp_address;
  // Stream (TCP) transports.
  std::string stream_address;

  bool operator==(const DataAddresses& other) const {
    return udp_address == other.udp_address && stream_address == other.stream_address;
  }
  bool operator!=(const DataAddresses& other) const { return !(*this == other); }
};

// OK when `address` is empty ("none") or "host:port" / "[v6]:port" with a
// port from 1 to 65535 and a host that is an IPv4 literal, a bracketed IPv6
// literal or a DNS name (dot-separated labels of letters, digits and inner
// hyphens). Otherwise INVALID_ARGUMENT "<field> \"<address>\": <why>".
absl::Status ValidateDataAddress(absl::string_view field, absl::string_view address);

// One live data-plane session.
struct Session {
  // Agent <-> relay hop; its session id identifies the session everywhere.
  v1::HopKey agent_hop;
  // Relay <-> connector hop.
  v1::HopKey connector_hop;
  uint32_t service_id = 0;
  // Tenant of the service and of the agent (no cross-tenant sessions).
  std::string tenant;
  std::string service;
  // Identity names of the agent and of the connector serving the service.
  std::string agent;
  std::string connector;
  // The relay carrying the session.
  PartyKey relay;
  absl::Time expires_at;
};

// Who a session names, for signaling (controlplane/signal_hub.h): enough to
// check a sender's ownership, nothing secret.
struct SessionParties {
  std::string tenant;
  // Identity names of the session's agent and connector.
  std::string agent;
  std::string connector;
  absl::Time expires_at;
  // True when the session was removed from the table (it expired, or its
  // service left the routes); false while it is held.
  bool ended = false;
};

class SessionTable {
 public:
  // Fills `out` with `size` cryptographically random bytes; false on failure.
  using RandomBytes = std::function<bool(uint8_t* out, size_t size)>;

  struct Options {
    // Lifetime of a session from its opening (--session_ttl). Must be > 0.
    absl::Duration ttl = absl::Hours(1);
    // Live sessions one agent identity may hold (--max_sessions_per_agent).
    // Must be >= 1.
    int max_sessions_per_agent = 64;
    // Source of session ids and keys. Default: OpenSSL's RAND_bytes.
    RandomBytes random_bytes;
  };

  // What the caller needs to open a session for a service it resolved.
  struct OpenRequest {
    // The agent: tenant (= the service's tenant) and identity name.
    PartyKey agent;
    std::string service;
    uint32_t service_id = 0;
    v1::Protocol protocol = v1::PROTOCOL_UNSPECIFIED;
    // Identity name of the connector serving the service (same tenant).
    std::string connector;
  };

  // A session just opened and the addresses of its relay.
  struct Opened {
    Session session;
    DataAddresses relay;
  };

  // INVALID_ARGUMENT naming the flag for a ttl <= 0 or a
  // max_sessions_per_agent < 1.
  static absl::StatusOr<std::unique_ptr<SessionTable>> Create(Options options);

  // --- Data-plane addresses of watchers ----------------------------------

  // Records the addresses that WatchRoutes stream `stream` (any id unique
  // among the open streams) of `watcher` announced. While several streams of
  // one identity are open, the one that announced last counts. Returns
  // INVALID_ARGUMENT naming the field ("udp_address", "stream_address") for a
  // bad address (nothing recorded then); otherwise whether route snapshots
  // built now differ from those built before (a connector whose sessions
  // carry its addresses changed them).
  absl::StatusOr<bool> SetWatcherAddresses(WatcherRole role, const PartyKey& watcher,
                                           uint64_t stream, DataAddresses addresses);
  // Forgets what stream `stream` of `watcher` announced (the stream ended);
  // unknown streams are ignored. Returns whether snapshots changed, as above.
  bool ClearWatcherAddresses(WatcherRole role, const PartyKey& watcher, uint64_t stream);
  // The addresses that count for `watcher`; empty ones when it has no open
  // stream or announced none.
  DataAddresses WatcherAddresses(WatcherRole role, const PartyKey& watcher) const;

  // --- Sessions -----------------------------------------------------------

  // Opens a session expiring at now + ttl, on the eligible relay with the
  // fewest live sessions (ties: the smaller name, then tenant). A relay is
  // eligible when it announced a UDP address, and also a stream address for
  // a TCP service. Errors: UNAVAILABLE when the connector announced no
  // address for the service's transport (stream_address for TCP,
  // udp_address otherwise) or no relay is eligible; RESOURCE_EXHAUSTED when
  // the agent already holds max_sessions_per_agent live sessions; INTERNAL
  // when the random source fails. Nothing changes on error.
  absl::StatusOr<Opened> Open(const OpenRequest& request, absl::Time now);

  // Removes the sessions that expired at or before `now`; returns how many.
  int Expire(absl::Time now);
  // Removes the sessions for which `keep` is false; returns how many.
  int RetainIf(const std::function<bool(const Session&)>& keep);

  // Who session `session_id` (its agent hop's id) names: a held session
  // (expired ones too, until Expire), else one of the last
  // kRememberedEndedSessions removed (ended = true), else nullopt.
  std::optional<SessionParties> FindParties(uint64_t session_id) const;
  // How many removed sessions FindParties still knows, oldest forgotten
  // first: signaling for a recently ended session is told that it ended.
  static constexpr size_t kRememberedEndedSessions = 4096;

  // Sessions in the table (expired ones stay until Expire).
  size_t size() const { return sessions_.size(); }
  // Sessions of `agent` that expire after `now`.
  int LiveSessionsOfAgent(const PartyKey& agent, absl::Time now) const;

  // Adds to `snapshot` the sessions `watcher` serves: for a relay, those
  // assigned to it with both hops and the connector's current addresses; for
  // a connector, those of its services with the connector hop, service id,
  // tenant and agent only. Sessions are in the order of their ids.
  void AppendRouteSessions(WatcherRole role, const PartyKey& watcher,
                           v1::RouteSnapshot* snapshot) const;
  // The sessions of `tenant` ("" for all) for the Admin API, by tenant,
  // service, agent and session id, without keys.
  std::vector<v1::SessionInfo> List(absl::string_view tenant) const;

 private:
  using WatcherKey = std::pair<WatcherRole, PartyKey>;

  explicit SessionTable(Options options) : options_(std::move(options)) {}

  // A fresh session id: non-zero, not used by any hop in the table, not in
  // `taken`. INTERNAL when the random source fails or keeps colliding.
  absl::StatusOr<uint64_t> NewSessionId(const std::set<uint64_t>& taken);
  // A hop with a fresh id and key.
  absl::StatusOr<v1::HopKey> NewHop(const std::set<uint64_t>& taken);
  // Whether some session is served by connector `watcher`.
  bool ConnectorHasSessions(const PartyKey& watcher) const;
  // For a session being removed: frees its ids and remembers it in ended_.
  void EraseIds(const Session& session);

  const Options options_;
  // By agent hop session id.
  std::map<uint64_t, Session> sessions_;
  // Session ids of both hops of every session.
  std::set<uint64_t> ids_in_use_;
  // Sessions removed lately, by agent hop id, and their ids in removal order
  // (at most kRememberedEndedSessions).
  std::map<uint64_t, SessionParties> ended_;
  std::deque<uint64_t> ended_order_;
  // Open streams of each watcher with what they announced, oldest first.
  std::map<WatcherKey, std::vector<std::pair<uint64_t, DataAddresses>>> watchers_;
};

}  // namespace ferry::controlplane
