#include "controlplane/service_registry.h"

#include <memory>
#include <string>
#include <vector>

#include "controlplane/testing/in_memory_state_store.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace ferry {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class RecordingLink : public ConnectorLink {
 public:
  void Send(v1::ConnectorCommand command) override { sent.push_back(std::move(command)); }
  void Close(const absl::Status& status) override { closed.push_back(status); }
  std::vector<v1::ConnectorCommand> sent;
  std::vector<absl::Status> closed;
};

SpiffeId Connector(const std::string& tenant, const std::string& name) {
  return SpiffeId{"ferry.local", tenant, "connector", name};
}

v1::Hello HelloWith(const std::string& text) {
  v1::Hello hello;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &hello)) << text;
  return hello;
}

const char kTwoServices[] = R"pb(
  services {
    name: "web"
    protocol: PROTOCOL_TCP
    backends { address: "127.0.0.1:8080" }
    backends { address: "127.0.0.1:8081" }
  }
  services {
    name: "echo"
    protocol: PROTOCOL_UDP
    backends { address: "127.0.0.1:9000" }
  }
)pb";

std::vector<std::string> Names(const v1::RouteSnapshot& snapshot) {
  std::vector<std::string> names;
  for (const auto& s : snapshot.services()) names.push_back(s.tenant() + "/" + s.name());
  return names;
}

class ServiceRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override { registry_ = Make(); }

  std::unique_ptr<ServiceRegistry> Make() {
    ServiceRegistry::Options options;
    options.connector_grace = absl::Seconds(10);
    options.keepalive_interval = absl::Seconds(5);
    options.now = [this] { return now_; };
    auto registry = ServiceRegistry::Create(&store_, &metrics_, options);
    EXPECT_TRUE(registry.ok()) << registry.status();
    return *std::move(registry);
  }

  uint64_t Attach(const SpiffeId& id, const char* hello, std::shared_ptr<RecordingLink> link) {
    absl::StatusOr<uint64_t> serial =
        registry_->AttachConnector(id, "ipv4:127.0.0.1:1", HelloWith(hello), link);
    EXPECT_TRUE(serial.ok()) << serial.status();
    return serial.value_or(0);
  }

  const SpiffeId relay_{"ferry.local", "ops", "relay", "relay-1"};
  controlplane::InMemoryStateStore store_;
  IntermediateMetrics metrics_{std::make_shared<prometheus::Registry>()};
  absl::Time now_ = absl::FromUnixSeconds(1000000);
  std::unique_ptr<ServiceRegistry> registry_;
};

TEST_F(ServiceRegistryTest, HelloRoutesServicesToRelaysAndOwner) {
  auto link = std::make_shared<RecordingLink>();
  const uint64_t before = registry_->route_version();
  Attach(Connector("acme", "edge-1"), kTwoServices, link);
  EXPECT_GT(registry_->route_version(), before);
  EXPECT_THAT(Names(registry_->BuildSnapshot(relay_)), ElementsAre("acme/echo", "acme/web"));
  EXPECT_THAT(Names(registry_->BuildSnapshot(Connector("acme", "edge-1"))),
              ElementsAre("acme/echo", "acme/web"));
  EXPECT_TRUE(registry_->BuildSnapshot(Connector("acme", "edge-2")).services().empty());
  const v1::Welcome welcome = registry_->WelcomeFor(Connector("acme", "edge-1"));
  ASSERT_EQ(welcome.services_size(), 2);
  EXPECT_NE(welcome.services(0).id(), welcome.services(1).id());
  EXPECT_EQ(welcome.keepalive_interval().seconds(), 5);
}

TEST_F(ServiceRegistryTest, RefusesAnotherTenantsServiceInHello) {
  absl::StatusOr<uint64_t> serial = registry_->AttachConnector(
      Connector("acme", "edge-1"), "peer", HelloWith(R"pb(services {
                                                            name: "web"
                                                            tenant: "globex"
                                                            protocol: PROTOCOL_TCP
                                                            backends { address: "127.0.0.1:1" }
                                                          })pb"),
      std::make_shared<RecordingLink>());
  EXPECT_EQ(serial.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(serial.status().message()), HasSubstr("not the connector's tenant"));
  EXPECT_TRUE(registry_->ListServices("").empty());
}

TEST_F(ServiceRegistryTest, RefusesInvalidHelloWithFieldPathAndChangesNothing) {
  absl::StatusOr<uint64_t> serial = registry_->AttachConnector(
      Connector("acme", "edge-1"), "peer", HelloWith(R"pb(services {
                                                            name: "ok"
                                                            protocol: PROTOCOL_TCP
                                                            backends { address: "a:1" }
                                                          }
                                                          services {
                                                            name: "Bad"
                                                            protocol: PROTOCOL_TCP
                                                            backends { address: "a:1" }
                                                          })pb"),
      std::make_shared<RecordingLink>());
  EXPECT_EQ(serial.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(serial.status().message()), HasSubstr("hello.services[1].name"));
  EXPECT_TRUE(registry_->ListServices("").empty());
}

TEST_F(ServiceRegistryTest, SameNameFromAnotherConnectorIsAlreadyExists) {
  Attach(Connector("acme", "edge-1"), kTwoServices, std::make_shared<RecordingLink>());
  absl::StatusOr<uint64_t> serial =
      registry_->AttachConnector(Connector("acme", "edge-2"), "peer", HelloWith(kTwoServices),
                                 std::make_shared<RecordingLink>());
  EXPECT_EQ(serial.status().code(), absl::StatusCode::kAlreadyExists);
  // Another tenant may use the same names.
  Attach(Connector("globex", "edge-1"), kTwoServices, std::make_shared<RecordingLink>());
  EXPECT_EQ(registry_->ListServices("").size(), 4u);
}

TEST_F(ServiceRegistryTest, DetachedServicesStayForGraceThenLeave) {
  const SpiffeId id = Connector("acme", "edge-1");
  const uint64_t serial = Attach(id, kTwoServices, std::make_shared<RecordingLink>());
  registry_->DetachConnector(id, serial);
  now_ += absl::Seconds(9);
  registry_->Tick();
  EXPECT_EQ(registry_->BuildSnapshot(relay_).services_size(), 2);
  const uint64_t version = registry_->route_version();
  now_ += absl::Seconds(2);
  registry_->Tick();
  EXPECT_TRUE(registry_->BuildSnapshot(relay_).services().empty());
  EXPECT_GT(registry_->route_version(), version);
  EXPECT_TRUE(registry_->ListServices("acme").empty());
}

TEST_F(ServiceRegistryTest, ReconnectWithinGraceKeepsRoutes) {
  const SpiffeId id = Connector("acme", "edge-1");
  const uint64_t serial = Attach(id, kTwoServices, std::make_shared<RecordingLink>());
  registry_->DetachConnector(id, serial);
  now_ += absl::Seconds(5);
  Attach(id, kTwoServices, std::make_shared<RecordingLink>());
  now_ += absl::Seconds(30);
  registry_->Tick();
  EXPECT_EQ(registry_->BuildSnapshot(relay_).services_size(), 2);
}

TEST_F(ServiceRegistryTest, MissedKeepalivesCloseTheStream) {
  const SpiffeId id = Connector("acme", "edge-1");
  auto link = std::make_shared<RecordingLink>();
  const uint64_t serial = Attach(id, kTwoServices, link);
  now_ += absl::Seconds(14);
  registry_->Keepalive(id, serial);
  now_ += absl::Seconds(14);
  registry_->Tick();
  EXPECT_TRUE(link->closed.empty());
  now_ += absl::Seconds(2);
  registry_->Tick();
  ASSERT_EQ(link->closed.size(), 1u);
  EXPECT_EQ(link->closed[0].code(), absl::StatusCode::kUnavailable);
  // Still routed during the grace period that follows.
  EXPECT_EQ(registry_->BuildSnapshot(relay_).services_size(), 2);
}

TEST_F(ServiceRegistryTest, NewSessionReplacesOldOneCleanly) {
  const SpiffeId id = Connector("acme", "edge-1");
  auto old_link = std::make_shared<RecordingLink>();
  const uint64_t old_serial = Attach(id, kTwoServices, old_link);
  Attach(id, kTwoServices, std::make_shared<RecordingLink>());
  ASSERT_EQ(old_link->closed.size(), 1u);
  EXPECT_EQ(old_link->closed[0].code(), absl::StatusCode::kAborted);
  // The old stream's end must not detach the new session.
  registry_->DetachConnector(id, old_serial);
  now_ += absl::Seconds(11);  // Past the grace period, within the keepalive window.
  registry_->Tick();
  EXPECT_EQ(registry_->ListConnectors().size(), 1u);
  EXPECT_EQ(registry_->BuildSnapshot(relay_).services_size(), 2);
}

TEST_F(ServiceRegistryTest, UnhealthyBackendLeavesRoutesAndComesBack) {
  const SpiffeId id = Connector("acme", "edge-1");
  const uint64_t serial = Attach(id, kTwoServices, std::make_shared<RecordingLink>());
  v1::HealthReport report;
  report.set_service("web");
  auto* b = report.add_backends();
  b->set_address("127.0.0.1:8080");
  b->set_health(v1::HEALTH_STATE_UNHEALTHY);
  ASSERT_TRUE(registry_->ReportHealth(id, serial, report).ok());
  auto web = [&] {
    const v1::RouteSnapshot snapshot = registry_->BuildSnapshot(relay_);
    for (const auto& s : snapshot.services()) {
      if (s.name() == "web")
        return std::vector<std::string>(s.backends().begin(), s.backends().end());
    }
    return std::vector<std::string>{};
  };
  EXPECT_THAT(web(), ElementsAre("127.0.0.1:8081"));
  b->set_health(v1::HEALTH_STATE_HEALTHY);
  ASSERT_TRUE(registry_->ReportHealth(id, serial, report).ok());
  EXPECT_THAT(web(), ElementsAre("127.0.0.1:8080", "127.0.0.1:8081"));

  report.set_service("not-mine");
  EXPECT_EQ(registry_->ReportHealth(id, serial, report).code(), absl::StatusCode::kNotFound);
}

TEST_F(ServiceRegistryTest, ApiServiceIsPushedPersistedAndStable) {
  const SpiffeId id = Connector("acme", "edge-1");
  auto link = std::make_shared<RecordingLink>();
  Attach(id, kTwoServices, link);
  v1::ServiceSpec spec;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      R"pb(name: "ollama-api"
           tenant: "acme"
           connector: "edge-1"
           protocol: PROTOCOL_TCP
           backends { address: "127.0.0.1:11434" })pb",
      &spec));
  absl::StatusOr<v1::Service> service = registry_->RegisterApiService(spec);
  ASSERT_TRUE(service.ok()) << service.status();
  EXPECT_EQ(service->origin(), "api");
  ASSERT_EQ(link->sent.size(), 1u);
  ASSERT_EQ(link->sent[0].api_services().services_size(), 1);
  EXPECT_EQ(link->sent[0].api_services().services(0).name(), "ollama-api");
  EXPECT_EQ(registry_->RegisterApiService(spec).status().code(), absl::StatusCode::kAlreadyExists);

  // A new registry over the same store (a restart) keeps it, with its id, and
  // a higher route version.
  const uint64_t version = registry_->route_version();
  registry_ = Make();
  EXPECT_GT(registry_->route_version(), version);
  std::vector<v1::Service> services = registry_->ListServices("acme");
  ASSERT_EQ(services.size(), 1u);
  EXPECT_EQ(services[0].spec().name(), "ollama-api");
  EXPECT_EQ(services[0].id(), service->id());
  // Not routed until its connector attaches.
  EXPECT_TRUE(registry_->BuildSnapshot(relay_).services().empty());
  auto new_link = std::make_shared<RecordingLink>();
  Attach(id, "", new_link);
  EXPECT_THAT(Names(registry_->BuildSnapshot(relay_)), ElementsAre("acme/ollama-api"));
}

TEST_F(ServiceRegistryTest, DeregisterErrors) {
  Attach(Connector("acme", "edge-1"), kTwoServices, std::make_shared<RecordingLink>());
  EXPECT_EQ(registry_->DeregisterApiService("acme", "nope").code(), absl::StatusCode::kNotFound);
  const absl::Status config = registry_->DeregisterApiService("acme", "web");
  EXPECT_EQ(config.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(config.message()), HasSubstr("config file"));
}

TEST_F(ServiceRegistryTest, SubscribersHearEveryChangeAndVersionTimesAreKept) {
  int calls = 0;
  const uint64_t sub = registry_->Subscribe([&] { ++calls; });
  Attach(Connector("acme", "edge-1"), kTwoServices, std::make_shared<RecordingLink>());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(registry_->VersionTime(registry_->route_version()), now_);
  registry_->Unsubscribe(sub);
  Attach(Connector("globex", "edge-1"), kTwoServices, std::make_shared<RecordingLink>());
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace ferry
