#include "controlplane/session_table.h"

#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ferry::controlplane {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kTenant[] = "acme";
const absl::Time kStart = absl::FromUnixSeconds(1700000000);
const absl::Duration kTtl = absl::Minutes(10);

const PartyKey kConnector{kTenant, "edge-1"};
const PartyKey kAgent{kTenant, "laptop"};

DataAddresses Addresses(const std::string& udp, const std::string& stream) {
  return DataAddresses{udp, stream};
}

SessionTable::OpenRequest Request(const PartyKey& agent = kAgent,
                                  v1::Protocol protocol = v1::PROTOCOL_UDP) {
  SessionTable::OpenRequest request;
  request.agent = agent;
  request.service = "echo";
  request.service_id = 7;
  request.protocol = protocol;
  request.connector = kConnector.name;
  return request;
}

std::vector<std::string> Relays(const std::vector<v1::SessionInfo>& sessions) {
  std::vector<std::string> relays;
  for (const v1::SessionInfo& s : sessions) relays.push_back(s.relay());
  return relays;
}

class SessionTableTest : public ::testing::Test {
 protected:
  void SetUp() override { table_ = Make(Options()); }

  static SessionTable::Options Options() {
    SessionTable::Options options;
    options.ttl = kTtl;
    options.max_sessions_per_agent = 3;
    return options;
  }

  static std::unique_ptr<SessionTable> Make(SessionTable::Options options) {
    absl::StatusOr<std::unique_ptr<SessionTable>> table = SessionTable::Create(std::move(options));
    EXPECT_TRUE(table.ok()) << table.status();
    return table.ok() ? *std::move(table) : nullptr;
  }

  // Announces addresses for a watcher on stream `stream`; expects success.
  bool Announce(WatcherRole role, const PartyKey& who, uint64_t stream, DataAddresses addresses) {
    absl::StatusOr<bool> changed = table_->SetWatcherAddresses(role, who, stream, addresses);
    EXPECT_TRUE(changed.ok()) << changed.status();
    return changed.ok() && *changed;
  }

  // A connector with both addresses and one relay "relay-a" with both.
  void ConnectDataPlane() {
    Announce(WatcherRole::kConnector, kConnector, 1, Addresses("10.0.0.5:7000", "10.0.0.5:7001"));
    Announce(WatcherRole::kRelay, PartyKey{"ops", "relay-a"}, 2,
             Addresses("10.0.0.9:6000", "10.0.0.9:6001"));
  }

  SessionTable::Opened MustOpen(const SessionTable::OpenRequest& request = Request(),
                                absl::Time now = kStart) {
    absl::StatusOr<SessionTable::Opened> opened = table_->Open(request, now);
    EXPECT_TRUE(opened.ok()) << opened.status();
    return opened.ok() ? *opened : SessionTable::Opened{};
  }

  std::unique_ptr<SessionTable> table_;
};

TEST(ValidateDataAddressTest, AcceptsLiteralsNamesAndEmpty) {
  for (const char* address : {"", "127.0.0.1:7000", "[::1]:7000", "[fe80::1]:1",
                              "relay.example.com:65535", "Relay-1.Example:443", "localhost:9"}) {
    EXPECT_TRUE(ValidateDataAddress("udp_address", address).ok()) << address;
  }
}

TEST(ValidateDataAddressTest, RefusesBadAddressesNamingTheField) {
  struct Case {
    const char* address;
    const char* why;
  };
  for (const Case& c : std::vector<Case>{
           {"127.0.0.1", "port"},
           {"127.0.0.1:0", "1 to 65535"},
           {"127.0.0.1:70000", "1 to 65535"},
           {":7000", ""},
           {"[::1:7000", "]"},
           {"[zz::1]:7000", "not an IPv6 address"},
           {"300.1.1.1:7000", "not a valid IPv4 address"},
           {"bad_host:7000", "neither an IP address nor a DNS name"},
           {"-relay:7000", "neither an IP address nor a DNS name"},
           {"a..b:7000", "neither an IP address nor a DNS name"},
       }) {
    absl::Status s = ValidateDataAddress("stream_address", c.address);
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << c.address << ": " << s;
    EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("stream_address \"", c.address, "\"")));
    EXPECT_THAT(s.message(), HasSubstr(c.why)) << c.address;
  }
}

TEST(SessionTableCreateTest, RefusesNonPositiveTtlAndCapNamingTheFlag) {
  SessionTable::Options options;
  options.ttl = absl::ZeroDuration();
  absl::StatusOr<std::unique_ptr<SessionTable>> table = SessionTable::Create(options);
  EXPECT_TRUE(absl::IsInvalidArgument(table.status()));
  EXPECT_THAT(table.status().message(), HasSubstr("--session_ttl"));

  options = SessionTable::Options();
  options.max_sessions_per_agent = 0;
  table = SessionTable::Create(options);
  EXPECT_TRUE(absl::IsInvalidArgument(table.status()));
  EXPECT_THAT(table.status().message(), HasSubstr("--max_sessions_per_agent"));
}

TEST_F(SessionTableTest, BadAnnouncementIsRefusedAndRecordsNothing) {
  absl::StatusOr<bool> set = table_->SetWatcherAddresses(
      WatcherRole::kRelay, PartyKey{"ops", "relay-a"}, 1, Addresses("10.0.0.9:6000", "nope"));
  EXPECT_TRUE(absl::IsInvalidArgument(set.status())) << set.status();
  EXPECT_THAT(set.status().message(), HasSubstr("stream_address \"nope\""));
  EXPECT_EQ(table_->WatcherAddresses(WatcherRole::kRelay, PartyKey{"ops", "relay-a"}),
            DataAddresses{});
}

TEST_F(SessionTableTest, LatestStreamOfAnIdentityCountsAndEndingOneKeepsTheOther) {
  const PartyKey relay{"ops", "relay-a"};
  Announce(WatcherRole::kRelay, relay, 1, Addresses("10.0.0.1:1", ""));
  Announce(WatcherRole::kRelay, relay, 2, Addresses("10.0.0.2:2", ""));
  EXPECT_EQ(table_->WatcherAddresses(WatcherRole::kRelay, relay).udp_address, "10.0.0.2:2");
  // The newer stream ends: the older one, still open, counts again.
  table_->ClearWatcherAddresses(WatcherRole::kRelay, relay, 2);
  EXPECT_EQ(table_->WatcherAddresses(WatcherRole::kRelay, relay).udp_address, "10.0.0.1:1");
  table_->ClearWatcherAddresses(WatcherRole::kRelay, relay, 1);
  EXPECT_EQ(table_->WatcherAddresses(WatcherRole::kRelay, relay), DataAddresses{});
  // The same identity in the other role is another watcher.
  Announce(WatcherRole::kConnector, relay, 3, Addresses("10.0.0.3:3", ""));
  EXPECT_EQ(table_->WatcherAddresses(WatcherRole::kRelay, relay), DataAddresses{});
}

TEST_F(SessionTableTest, OpenIssuesTwoDistinctHopsWithFreshKeys) {
  ConnectDataPlane();
  SessionTable::Opened opened = MustOpen();
  const Session& s = opened.session;
  EXPECT_NE(s.agent_hop.session_id(), 0u);
  EXPECT_NE(s.connector_hop.session_id(), 0u);
  EXPECT_NE(s.agent_hop.session_id(), s.connector_hop.session_id());
  EXPECT_EQ(s.agent_hop.key().size(), 32u);
  EXPECT_EQ(s.connector_hop.key().size(), 32u);
  EXPECT_NE(s.agent_hop.key(), s.connector_hop.key());
  EXPECT_EQ(s.service_id, 7u);
  EXPECT_EQ(s.tenant, kTenant);
  EXPECT_EQ(s.agent, "laptop");
  EXPECT_EQ(s.connector, "edge-1");
  EXPECT_EQ(s.relay, (PartyKey{"ops", "relay-a"}));
  EXPECT_EQ(s.expires_at, kStart + kTtl);
  EXPECT_EQ(opened.relay, Addresses("10.0.0.9:6000", "10.0.0.9:6001"));
  EXPECT_EQ(table_->size(), 1u);
}

TEST_F(SessionTableTest, IdsSkipZeroAndIdsInUse) {
  // A scripted random source: ids 0, 5, 5 (taken by then), 6; keys of 0xAB.
  auto script = std::make_shared<std::deque<uint64_t>>(std::deque<uint64_t>{0, 5, 5, 6});
  SessionTable::Options options = Options();
  options.random_bytes = [script](uint8_t* out, size_t size) {
    if (size == sizeof(uint64_t) && !script->empty()) {
      std::memcpy(out, &script->front(), size);
      script->pop_front();
    } else {
      std::memset(out, 0xAB, size);
    }
    return true;
  };
  table_ = Make(options);
  ConnectDataPlane();
  SessionTable::Opened opened = MustOpen();
  EXPECT_EQ(opened.session.agent_hop.session_id(), 5u);
  EXPECT_EQ(opened.session.connector_hop.session_id(), 6u);
  EXPECT_EQ(opened.session.agent_hop.key(), std::string(32, '\xAB'));
}

TEST_F(SessionTableTest, FailingRandomSourceIsInternalAndOpensNothing) {
  SessionTable::Options options = Options();
  options.random_bytes = [](uint8_t*, size_t) { return false; };
  table_ = Make(options);
  ConnectDataPlane();
  absl::StatusOr<SessionTable::Opened> opened = table_->Open(Request(), kStart);
  EXPECT_TRUE(absl::IsInternal(opened.status())) << opened.status();
  EXPECT_EQ(table_->size(), 0u);
}

TEST_F(SessionTableTest, UnavailableWithoutConnectorAddressForTheServicesTransport) {
  Announce(WatcherRole::kRelay, PartyKey{"ops", "relay-a"}, 2,
           Addresses("10.0.0.9:6000", "10.0.0.9:6001"));
  absl::StatusOr<SessionTable::Opened> opened = table_->Open(Request(), kStart);
  EXPECT_TRUE(absl::IsUnavailable(opened.status())) << opened.status();
  EXPECT_THAT(opened.status().message(), HasSubstr("connector \"edge-1\""));

  // A UDP address serves UDP services but not TCP ones.
  Announce(WatcherRole::kConnector, kConnector, 1, Addresses("10.0.0.5:7000", ""));
  EXPECT_TRUE(table_->Open(Request(), kStart).ok());
  opened = table_->Open(Request(kAgent, v1::PROTOCOL_TCP), kStart);
  EXPECT_TRUE(absl::IsUnavailable(opened.status())) << opened.status();
  EXPECT_THAT(opened.status().message(), HasSubstr("stream_address"));
}

TEST_F(SessionTableTest, UnavailableWithoutAnEligibleRelay) {
  Announce(WatcherRole::kConnector, kConnector, 1, Addresses("10.0.0.5:7000", "10.0.0.5:7001"));
  absl::StatusOr<SessionTable::Opened> opened = table_->Open(Request(), kStart);
  EXPECT_TRUE(absl::IsUnavailable(opened.status())) << opened.status();
  EXPECT_THAT(opened.status().message(), HasSubstr("no relay"));

  // A relay that announced no UDP address is never given sessions.
  Announce(WatcherRole::kRelay, PartyKey{"ops", "relay-a"}, 2, Addresses("", "10.0.0.9:6001"));
  EXPECT_TRUE(absl::IsUnavailable(table_->Open(Request(), kStart).status()));
  // One with UDP only serves UDP services, not TCP ones.
  Announce(WatcherRole::kRelay, PartyKey{"ops", "relay-b"}, 3, Addresses("10.0.0.8:6000", ""));
  EXPECT_TRUE(
      absl::IsUnavailable(table_->Open(Request(kAgent, v1::PROTOCOL_TCP), kStart).status()));
  absl::StatusOr<SessionTable::Opened> udp = table_->Open(Request(), kStart);
  ASSERT_TRUE(udp.ok()) << udp.status();
  EXPECT_EQ(udp->session.relay.name, "relay-b");
  EXPECT_EQ(udp->relay.udp_address, "10.0.0.8:6000");
}

TEST_F(SessionTableTest, RelayWithFewestLiveSessionsWinsTiesByName) {
  Announce(WatcherRole::kConnector, kConnector, 1, Addresses("10.0.0.5:7000", ""));
  Announce(WatcherRole::kRelay, PartyKey{"ops", "relay-c"}, 2, Addresses("10.0.0.3:1", ""));
  Announce(WatcherRole::kRelay, PartyKey{"ops", "relay-a"}, 3, Addresses("10.0.0.1:1", ""));
  Announce(WatcherRole::kRelay, PartyKey{"ops", "relay-b"}, 4, Addresses("10.0.0.2:1", ""));
  std::vector<std::string> chosen;
  for (int i = 0; i < 5; ++i) {
    const PartyKey agent{kTenant, absl::StrCat("agent-", i)};
    chosen.push_back(MustOpen(Request(agent)).session.relay.name);
  }
  EXPECT_THAT(chosen, ElementsAre("relay-a", "relay-b", "relay-c", "relay-a", "relay-b"));
}

TEST_F(SessionTableTest, ExpiredSessionsAreNoLoadForTheRelayChoice) {
  Announce(WatcherRole::kConnector, kConnector, 1, Addresses("10.0.0.5:7000", ""));
  Announce(WatcherRole::kRelay, PartyKey{"ops", "relay-a"}, 2, Addresses("10.0.0.1:1", ""));
  MustOpen(Request(PartyKey{kTenant, "early-1"}), kStart);
  MustOpen(Request(PartyKey{kTenant, "early-2"}), kStart);
  // relay-b comes later and gets a session that outlives relay-a's two.
  Announce(WatcherRole::kRelay, PartyKey{"ops", "relay-b"}, 3, Addresses("10.0.0.2:1", ""));
  const absl::Time mid = kStart + kTtl / 2;
  EXPECT_EQ(MustOpen(Request(PartyKey{kTenant, "mid"}), mid).session.relay.name, "relay-b");
  // Once relay-a's sessions expired (still in the table until Expire), it
  // carries no live session and relay-b one.
  const absl::Time later = kStart + kTtl;
  ASSERT_EQ(table_->size(), 3u);
  EXPECT_EQ(MustOpen(Request(PartyKey{kTenant, "late"}), later).session.relay.name, "relay-a");
}

TEST_F(SessionTableTest, AgentCapCountsLiveSessionsOnly) {
  ConnectDataPlane();
  for (int i = 0; i < 3; ++i) MustOpen(Request(), kStart + absl::Seconds(i));
  absl::StatusOr<SessionTable::Opened> refused = table_->Open(Request(), kStart + absl::Seconds(3));
  EXPECT_TRUE(absl::IsResourceExhausted(refused.status())) << refused.status();
  EXPECT_THAT(refused.status().message(), HasSubstr("--max_sessions_per_agent"));
  EXPECT_THAT(refused.status().message(), HasSubstr("\"laptop\""));
  EXPECT_EQ(table_->size(), 3u);

  // Another agent of the same tenant has its own allowance.
  EXPECT_TRUE(table_->Open(Request(PartyKey{kTenant, "desktop"}), kStart).ok());
  // Once the first session expired, the agent may open one more.
  const absl::Time first_expired = kStart + kTtl;
  EXPECT_EQ(table_->LiveSessionsOfAgent(kAgent, first_expired), 2);
  EXPECT_TRUE(table_->Open(Request(), first_expired).ok());
}

TEST_F(SessionTableTest, ExpireRemovesSessionsAtTheirDeadline) {
  ConnectDataPlane();
  MustOpen(Request(), kStart);
  MustOpen(Request(), kStart + absl::Minutes(1));
  EXPECT_EQ(table_->Expire(kStart + kTtl - absl::Nanoseconds(1)), 0);
  EXPECT_EQ(table_->size(), 2u);
  EXPECT_EQ(table_->Expire(kStart + kTtl), 1);
  EXPECT_EQ(table_->size(), 1u);
  EXPECT_EQ(table_->Expire(kStart + kTtl + absl::Minutes(1)), 1);
  EXPECT_EQ(table_->size(), 0u);
  v1::RouteSnapshot snapshot;
  table_->AppendRouteSessions(WatcherRole::kRelay, PartyKey{"ops", "relay-a"}, &snapshot);
  EXPECT_EQ(snapshot.sessions_size(), 0);
}

TEST_F(SessionTableTest, RetainIfDropsSessionsOfAServiceThatLeft) {
  ConnectDataPlane();
  MustOpen();
  SessionTable::OpenRequest other = Request();
  other.service = "web";
  other.service_id = 8;
  MustOpen(other);
  EXPECT_EQ(table_->RetainIf([](const Session& s) { return s.service != "echo"; }), 1);
  std::vector<v1::SessionInfo> left = table_->List("");
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].service(), "web");
}

TEST_F(SessionTableTest, FindPartiesKnowsHeldAndRecentlyEndedSessions) {
  ConnectDataPlane();
  const Session held = MustOpen().session;
  const Session expiring = MustOpen(Request(), kStart - absl::Minutes(1)).session;
  SessionTable::OpenRequest web = Request(PartyKey{kTenant, "phone"});
  web.service = "web";
  const Session dropped = MustOpen(web).session;

  EXPECT_EQ(table_->FindParties(0), std::nullopt);
  EXPECT_EQ(table_->FindParties(held.connector_hop.session_id()), std::nullopt)
      << "only the agent hop's id names a session";
  std::optional<SessionParties> found = table_->FindParties(held.agent_hop.session_id());
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->tenant, kTenant);
  EXPECT_EQ(found->agent, "laptop");
  EXPECT_EQ(found->connector, kConnector.name);
  EXPECT_EQ(found->expires_at, kStart + kTtl);
  EXPECT_FALSE(found->ended);

  EXPECT_EQ(table_->Expire(kStart + kTtl - absl::Minutes(1)), 1);
  EXPECT_EQ(table_->RetainIf([](const Session& s) { return s.service != "web"; }), 1);
  found = table_->FindParties(expiring.agent_hop.session_id());
  ASSERT_TRUE(found.has_value());
  EXPECT_TRUE(found->ended);
  EXPECT_EQ(found->expires_at, kStart - absl::Minutes(1) + kTtl);
  found = table_->FindParties(dropped.agent_hop.session_id());
  ASSERT_TRUE(found.has_value());
  EXPECT_TRUE(found->ended);
  EXPECT_EQ(found->agent, "phone");
  EXPECT_FALSE(table_->FindParties(held.agent_hop.session_id())->ended);
}

TEST_F(SessionTableTest, FindPartiesForgetsTheOldestEndedSessionsBeyondItsBound) {
  SessionTable::Options options = Options();
  options.max_sessions_per_agent = 1;
  table_ = Make(options);
  ConnectDataPlane();
  std::vector<uint64_t> ids;
  for (size_t i = 0; i < SessionTable::kRememberedEndedSessions + 1; ++i) {
    ids.push_back(MustOpen().session.agent_hop.session_id());
    ASSERT_EQ(table_->RetainIf([](const Session&) { return false; }), 1);
  }
  EXPECT_EQ(table_->FindParties(ids.front()), std::nullopt);
  ASSERT_TRUE(table_->FindParties(ids[1]).has_value());
  EXPECT_TRUE(table_->FindParties(ids.back())->ended);
}

TEST_F(SessionTableTest, RelaySnapshotHoldsBothHopsAndTheConnectorsAddresses) {
  ConnectDataPlane();
  const Session s = MustOpen().session;
  v1::RouteSnapshot relay;
  table_->AppendRouteSessions(WatcherRole::kRelay, PartyKey{"ops", "relay-a"}, &relay);
  ASSERT_EQ(relay.sessions_size(), 1);
  const v1::RouteSession& r = relay.sessions(0);
  EXPECT_EQ(r.agent_hop().session_id(), s.agent_hop.session_id());
  EXPECT_EQ(r.agent_hop().key(), s.agent_hop.key());
  EXPECT_EQ(r.connector_hop().session_id(), s.connector_hop.session_id());
  EXPECT_EQ(r.connector_hop().key(), s.connector_hop.key());
  EXPECT_EQ(r.service_id(), 7u);
  EXPECT_EQ(r.tenant(), kTenant);
  EXPECT_EQ(r.agent(), "laptop");
  EXPECT_EQ(r.connector_address(), "10.0.0.5:7000");
  EXPECT_EQ(r.connector_stream_address(), "10.0.0.5:7001");

  // Another relay gets none of it.
  v1::RouteSnapshot other;
  table_->AppendRouteSessions(WatcherRole::kRelay, PartyKey{"ops", "relay-z"}, &other);
  EXPECT_EQ(other.sessions_size(), 0);
}

TEST_F(SessionTableTest, ConnectorSnapshotNeverHoldsTheAgentHop) {
  ConnectDataPlane();
  const Session s = MustOpen().session;
  v1::RouteSnapshot connector;
  table_->AppendRouteSessions(WatcherRole::kConnector, kConnector, &connector);
  ASSERT_EQ(connector.sessions_size(), 1);
  const v1::RouteSession& c = connector.sessions(0);
  EXPECT_FALSE(c.has_agent_hop());
  EXPECT_EQ(c.connector_hop().session_id(), s.connector_hop.session_id());
  EXPECT_EQ(c.connector_hop().key(), s.connector_hop.key());
  EXPECT_EQ(c.service_id(), 7u);
  EXPECT_EQ(c.tenant(), kTenant);
  EXPECT_EQ(c.agent(), "laptop");
  EXPECT_TRUE(c.connector_address().empty());
  EXPECT_TRUE(c.connector_stream_address().empty());
  // The agent's key appears nowhere in the connector's snapshot.
  EXPECT_EQ(connector.SerializeAsString().find(s.agent_hop.key()), std::string::npos);

  // A connector of the same name in another tenant serves none of them.
  v1::RouteSnapshot stranger;
  table_->AppendRouteSessions(WatcherRole::kConnector, PartyKey{"globex", "edge-1"}, &stranger);
  EXPECT_EQ(stranger.sessions_size(), 0);
}

TEST_F(SessionTableTest, ConnectorAddressChangeChangesSnapshotsOnlyWhenItHasSessions) {
  ConnectDataPlane();
  // No sessions yet: no snapshot carries the connector's addresses.
  EXPECT_FALSE(Announce(WatcherRole::kConnector, kConnector, 5,
                        Addresses("10.0.0.6:7000", "10.0.0.6:7001")));
  MustOpen();
  // Same addresses again: nothing changes.
  EXPECT_FALSE(Announce(WatcherRole::kConnector, kConnector, 6,
                        Addresses("10.0.0.6:7000", "10.0.0.6:7001")));
  EXPECT_TRUE(Announce(WatcherRole::kConnector, kConnector, 7,
                       Addresses("10.0.0.7:7000", "10.0.0.7:7001")));
  // A relay's addresses are in no snapshot.
  EXPECT_FALSE(
      Announce(WatcherRole::kRelay, PartyKey{"ops", "relay-a"}, 8, Addresses("10.0.0.1:6000", "")));
  // The connector's streams end one by one; the last end empties its addresses.
  EXPECT_FALSE(table_->ClearWatcherAddresses(WatcherRole::kConnector, kConnector, 1));
  EXPECT_FALSE(table_->ClearWatcherAddresses(WatcherRole::kConnector, kConnector, 5));
  EXPECT_TRUE(table_->ClearWatcherAddresses(WatcherRole::kConnector, kConnector, 7));
  EXPECT_TRUE(table_->ClearWatcherAddresses(WatcherRole::kConnector, kConnector, 6));
  v1::RouteSnapshot relay;
  table_->AppendRouteSessions(WatcherRole::kRelay, PartyKey{"ops", "relay-a"}, &relay);
  ASSERT_EQ(relay.sessions_size(), 1);
  EXPECT_TRUE(relay.sessions(0).connector_address().empty());
}

TEST_F(SessionTableTest, ListIsTenantScopedSortedAndKeyless) {
  ConnectDataPlane();
  const PartyKey globex_connector{"globex", "edge-1"};
  Announce(WatcherRole::kConnector, globex_connector, 9, Addresses("10.0.1.5:7000", ""));
  const Session mine = MustOpen(Request(PartyKey{kTenant, "zed"})).session;
  MustOpen(Request(PartyKey{kTenant, "amy"}));
  MustOpen(Request(PartyKey{"globex", "bob"}));

  std::vector<v1::SessionInfo> acme = table_->List(kTenant);
  ASSERT_EQ(acme.size(), 2u);
  EXPECT_EQ(acme[0].agent(), "amy");
  EXPECT_EQ(acme[1].agent(), "zed");
  const v1::SessionInfo& info = acme[1];
  // 16 hex digits of the agent hop's id, leading zeros kept.
  EXPECT_EQ(info.session_id().size(), 16u);
  EXPECT_EQ(std::strtoull(info.session_id().c_str(), nullptr, 16), mine.agent_hop.session_id());
  EXPECT_EQ(info.tenant(), kTenant);
  EXPECT_EQ(info.service(), "echo");
  EXPECT_EQ(info.connector(), "edge-1");
  EXPECT_EQ(info.relay(), "relay-a");
  EXPECT_EQ(info.path(), v1::SESSION_PATH_RELAY);
  EXPECT_EQ(info.expires_at().seconds(), absl::ToUnixSeconds(kStart + kTtl));
  EXPECT_EQ(info.SerializeAsString().find(mine.agent_hop.key()), std::string::npos);

  EXPECT_THAT(Relays(table_->List("globex")), ElementsAre("relay-a"));
  EXPECT_EQ(table_->List("").size(), 3u);
  EXPECT_TRUE(table_->List("initech").empty());
}

}  // namespace
}  // namespace ferry::controlplane
