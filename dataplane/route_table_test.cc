#include "dataplane/route_table.h"

#include <string>

#include "gtest/gtest.h"

namespace ferry::dataplane {
namespace {

v1::RouteSnapshot Snapshot() {
  v1::RouteSnapshot snapshot;
  snapshot.set_version(7);
  v1::RouteService* service = snapshot.add_services();
  service->set_service_id(11);
  service->set_name("web");
  service->set_tenant("acme");
  service->set_protocol(v1::PROTOCOL_TCP);
  service->add_backends("127.0.0.1:8080");
  service->add_backends("[::1]:8081");
  v1::RouteSession* session = snapshot.add_sessions();
  session->mutable_agent_hop()->set_session_id(100);
  session->mutable_agent_hop()->set_key(std::string(32, 'a'));
  session->mutable_connector_hop()->set_session_id(200);
  session->mutable_connector_hop()->set_key(std::string(32, 'c'));
  session->set_service_id(11);
  session->set_tenant("acme");
  session->set_connector_address("127.0.0.1:7490");
  session->set_connector_stream_address("127.0.0.1:7491");
  return snapshot;
}

TEST(RouteTableTest, RelayHoldsBothHopsWithOneAeadPerWorker) {
  absl::StatusOr<std::shared_ptr<const RouteTable>> table =
      RouteTable::Build(Snapshot(), DataplaneRole::kRelay, 3);
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ((*table)->version(), 7u);
  SessionRef agent = (*table)->FindSession(100);
  ASSERT_TRUE(agent);
  EXPECT_EQ(agent.hop, Hop::kAgent);
  EXPECT_EQ(agent.session_id(), 100u);
  EXPECT_EQ(agent.route->agent_aead.size(), 3u);
  EXPECT_EQ(agent.aead(2).role(), HopRole::kResponder);
  SessionRef connector = (*table)->FindSession(200);
  ASSERT_TRUE(connector);
  EXPECT_EQ(connector.hop, Hop::kConnector);
  EXPECT_EQ(connector.route, agent.route);
  EXPECT_EQ(connector.aead(0).role(), HopRole::kInitiator);
  EXPECT_EQ(agent.route->connector_udp.ToString(), "127.0.0.1:7490");
  EXPECT_FALSE((*table)->FindSession(300));
  ASSERT_NE((*table)->FindService(11), nullptr);
  EXPECT_EQ((*table)->FindService(12), nullptr);
}

TEST(RouteTableTest, ConnectorHoldsOnlyItsHopAndParsedBackends) {
  v1::RouteSnapshot snapshot = Snapshot();
  snapshot.mutable_sessions(0)->clear_agent_hop();
  absl::StatusOr<std::shared_ptr<const RouteTable>> table =
      RouteTable::Build(snapshot, DataplaneRole::kConnector, 1);
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_FALSE((*table)->FindSession(100));
  SessionRef ref = (*table)->FindSession(200);
  ASSERT_TRUE(ref);
  EXPECT_EQ(ref.aead(0).role(), HopRole::kResponder);
  const ServiceRoute* service = (*table)->FindService(11);
  ASSERT_NE(service, nullptr);
  ASSERT_EQ(service->backends.size(), 2u);
  EXPECT_EQ(service->backends[1].ToString(), "[::1]:8081");
}

TEST(RouteTableTest, RefusesWhatItCannotUseWithTheFieldPath) {
  struct Case {
    const char* name;
    void (*mutate)(v1::RouteSnapshot*);
    const char* message;
  };
  const Case cases[] = {
      {"short key",
       [](v1::RouteSnapshot* s) { s->mutable_sessions(0)->mutable_agent_hop()->set_key("k"); },
       "sessions[0].agent_hop.key"},
      {"zero id",
       [](v1::RouteSnapshot* s) {
         s->mutable_sessions(0)->mutable_connector_hop()->set_session_id(0);
       },
       "sessions[0].connector_hop.session_id"},
      {"same id on both hops",
       [](v1::RouteSnapshot* s) {
         s->mutable_sessions(0)->mutable_connector_hop()->set_session_id(100);
       },
       "connector_hop.session_id"},
      {"unknown service", [](v1::RouteSnapshot* s) { s->mutable_sessions(0)->set_service_id(99); },
       "sessions[0].service_id"},
      {"bad connector address",
       [](v1::RouteSnapshot* s) { s->mutable_sessions(0)->set_connector_address("nowhere"); },
       "sessions[0].connector_address"},
      {"duplicate service", [](v1::RouteSnapshot* s) { *s->add_services() = s->services(0); },
       "services[1].service_id"},
  };
  for (const Case& c : cases) {
    v1::RouteSnapshot snapshot = Snapshot();
    c.mutate(&snapshot);
    absl::StatusOr<std::shared_ptr<const RouteTable>> table =
        RouteTable::Build(snapshot, DataplaneRole::kRelay, 1);
    ASSERT_FALSE(table.ok()) << c.name;
    EXPECT_EQ(table.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_NE(table.status().message().find(c.message), std::string::npos)
        << c.name << ": " << table.status();
  }
}

TEST(RouteTableTest, RelayKeepsASessionWhoseConnectorIsAway) {
  v1::RouteSnapshot snapshot = Snapshot();
  snapshot.mutable_sessions(0)->clear_connector_address();
  absl::StatusOr<std::shared_ptr<const RouteTable>> table =
      RouteTable::Build(snapshot, DataplaneRole::kRelay, 1);
  ASSERT_TRUE(table.ok()) << table.status();
  SessionRef ref = (*table)->FindSession(100);
  ASSERT_TRUE(ref);
  EXPECT_TRUE(ref.route->connector_udp.empty());
}

TEST(RouteTableTest, ConnectorRefusesABackendThatIsNotHostPort) {
  v1::RouteSnapshot snapshot = Snapshot();
  snapshot.mutable_services(0)->set_backends(0, "no-port");
  absl::StatusOr<std::shared_ptr<const RouteTable>> table =
      RouteTable::Build(snapshot, DataplaneRole::kConnector, 1);
  ASSERT_FALSE(table.ok());
  EXPECT_NE(table.status().message().find("services[0].backends[0]"), std::string::npos);
}

}  // namespace
}  // namespace ferry::dataplane
