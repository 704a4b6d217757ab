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
using ::testing::IsEmpty;

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
    ServiceRegistry::Options options = options_;
    options.now = [this] { return now_; };
    auto registry = ServiceRegistry::Create(&store_, &metrics_, options);
    EXPECT_TRUE(registry.ok()) << registry.status();
    return registry.ok() ? *std::move(registry) : nullptr;
  }

  static ServiceRegistry::Options DefaultOptions() {
    ServiceRegistry::Options options;
    options.connector_grace = absl::Seconds(10);
    options.keepalive_interval = absl::Seconds(5);
    return options;
  }

  // The service `name` of `tenant` as listed, or a default Service when absent.
  v1::Service Find(const std::string& tenant, const std::string& name) {
    for (const v1::Service& s : registry_->ListServices(tenant)) {
      if (s.spec().name() == name) return s;
    }
    ADD_FAILURE() << "no service " << tenant << "/" << name;
    return v1::Service();
  }

  uint64_t Attach(const SpiffeId& id, const char* hello, std::shared_ptr<RecordingLink> link) {
    absl::StatusOr<uint64_t> serial =
        registry_->AttachConnector(id, "ipv4:127.0.0.1:1", HelloWith(hello), link);
    EXPECT_TRUE(serial.ok()) << serial.status();
    return serial.value_or(0);
  }

  const SpiffeId relay_{"ferry.local", "ops", "relay", "relay-1"};
  ServiceRegistry::Options options_ = DefaultOptions();
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
  // A report carries the service's whole backend set.
  auto* b = report.add_backends();
  b->set_address("127.0.0.1:8080");
  b->set_health(v1::HEALTH_STATE_UNHEALTHY);
  auto* other = report.add_backends();
  other->set_address("127.0.0.1:8081");
  other->set_health(v1::HEALTH_STATE_HEALTHY);
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

  // The service's health follows: every backend down is UNHEALTHY, its VIP stays.
  other->set_health(v1::HEALTH_STATE_UNHEALTHY);
  b->set_health(v1::HEALTH_STATE_UNHEALTHY);
  ASSERT_TRUE(registry_->ReportHealth(id, serial, report).ok());
  EXPECT_THAT(web(), IsEmpty());
  for (const v1::Service& s : registry_->ListServices("acme")) {
    if (s.spec().name() != "web") continue;
    EXPECT_EQ(s.health(), v1::HEALTH_STATE_UNHEALTHY);
    EXPECT_FALSE(s.vip().empty());
  }

  // A source that is not in the spec is refused, naming the field.
  v1::HealthReport stray = report;
  stray.mutable_backends(1)->set_source("10.9.9.9:1");
  const absl::Status refused = registry_->ReportHealth(id, serial, stray);
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.message(), HasSubstr("health.backends[1].source"));

  report.set_service("not-mine");
  EXPECT_EQ(registry_->ReportHealth(id, serial, report).code(), absl::StatusCode::kNotFound);
}

TEST_F(ServiceRegistryTest, RefusedConfigReloadShowsInListConnectors) {
  const SpiffeId id = Connector("acme", "edge-1");
  const uint64_t serial = Attach(id, kTwoServices, std::make_shared<RecordingLink>());
  v1::ConfigStatus status;
  status.set_path("/etc/ferry/connector.yaml");
  status.set_error("services[0].port: 70000 is not a port");
  registry_->SetConfigStatus(id, serial, status);
  registry_->SetConfigStatus(id, serial + 1, v1::ConfigStatus());  // A stale session: ignored.
  std::vector<v1::Peer> peers = registry_->ListConnectors();
  ASSERT_EQ(peers.size(), 1u);
  EXPECT_EQ(peers[0].config_error(), "services[0].port: 70000 is not a port");
  registry_->SetConfigStatus(id, serial, v1::ConfigStatus());  // The next reload succeeded.
  EXPECT_EQ(registry_->ListConnectors()[0].config_error(), "");
}

TEST_F(ServiceRegistryTest, DiscoveredBackendsComeFromTheConnectorsReport) {
  const SpiffeId id = Connector("acme", "edge-1");
  const uint64_t serial = Attach(id, R"pb(
                                   services {
                                     name: "db"
                                     protocol: PROTOCOL_UDP
                                     port: 53
                                     backends { address: "dns://db.internal:5353" }
                                   })pb",
                                 std::make_shared<RecordingLink>());
  auto db = [&] {
    const v1::RouteSnapshot snapshot = registry_->BuildSnapshot(relay_);
    for (const auto& s : snapshot.services()) {
      if (s.name() == "db")
        return std::vector<std::string>(s.backends().begin(), s.backends().end());
    }
    return std::vector<std::string>{"(not routed)"};
  };
  // Unresolved: routed, but no address to send to yet.
  EXPECT_THAT(db(), IsEmpty());
  v1::HealthReport report;
  report.set_service("db");
  for (const char* address : {"10.0.0.1:5353", "10.0.0.2:5353"}) {
    auto* b = report.add_backends();
    b->set_address(address);
    b->set_source("dns://db.internal:5353");
    b->set_health(v1::HEALTH_STATE_HEALTHY);
  }
  ASSERT_TRUE(registry_->ReportHealth(id, serial, report).ok());
  EXPECT_THAT(db(), ElementsAre("10.0.0.1:5353", "10.0.0.2:5353"));
  // The record changed: the next report replaces the set.
  report.mutable_backends()->DeleteSubrange(0, 1);
  ASSERT_TRUE(registry_->ReportHealth(id, serial, report).ok());
  EXPECT_THAT(db(), ElementsAre("10.0.0.2:5353"));
  const std::vector<v1::Service> services = registry_->ListServices("acme");
  ASSERT_EQ(services.size(), 1u);
  ASSERT_EQ(services[0].backends_size(), 1);
  EXPECT_EQ(services[0].backends(0).source(), "dns://db.internal:5353");
  EXPECT_EQ(services[0].health(), v1::HEALTH_STATE_HEALTHY);
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

// --- VIP leases ---------------------------------------------------------------------------------

v1::ServiceSpec ApiSpec(const std::string& name, const std::string& pinned_vip = "") {
  v1::ServiceSpec spec;
  spec.set_name(name);
  spec.set_tenant("acme");
  spec.set_connector("edge-1");
  spec.set_protocol(v1::PROTOCOL_TCP);
  spec.add_backends()->set_address("127.0.0.1:11434");
  spec.set_pinned_vip(pinned_vip);
  return spec;
}

std::vector<std::string> LeasedVips(ServiceRegistry& registry, const std::string& tenant) {
  absl::StatusOr<std::vector<v1::Lease>> leases = registry.ListLeases(tenant);
  EXPECT_TRUE(leases.ok()) << leases.status();
  std::vector<std::string> out;
  for (const v1::Lease& lease : leases.value_or(std::vector<v1::Lease>{})) {
    out.push_back(lease.service() + "=" + lease.vip());
  }
  return out;
}

TEST_F(ServiceRegistryTest, HelloLeasesAVipAndDnsNameForEveryService) {
  Attach(Connector("acme", "edge-1"), kTwoServices, std::make_shared<RecordingLink>());
  const v1::Service web = Find("acme", "web");
  const v1::Service echo = Find("acme", "echo");
  EXPECT_THAT(web.vip(), ::testing::StartsWith("10.100.0."));
  EXPECT_THAT(echo.vip(), ::testing::StartsWith("10.100.0."));
  EXPECT_NE(web.vip(), echo.vip());
  EXPECT_EQ(web.dns_name(), "web.acme.ferry.internal");
  EXPECT_EQ(echo.dns_name(), "echo.acme.ferry.internal");
  EXPECT_EQ(registry_->ResolveVip("acme", "web"), web.vip());
  EXPECT_EQ(registry_->ResolveVip("acme", "nope"), std::nullopt);

  // The same VIPs in the routes, the Welcome, and the leases.
  const v1::RouteSnapshot snapshot = registry_->BuildSnapshot(relay_);
  ASSERT_EQ(snapshot.services_size(), 2);
  EXPECT_EQ(snapshot.services(0).vip(), echo.vip());
  EXPECT_EQ(snapshot.services(1).vip(), web.vip());
  const v1::Welcome welcome = registry_->WelcomeFor(Connector("acme", "edge-1"));
  ASSERT_EQ(welcome.services_size(), 2);
  EXPECT_EQ(welcome.services(1).vip(), web.vip());
  absl::StatusOr<std::vector<v1::Lease>> leases = registry_->ListLeases("acme");
  ASSERT_TRUE(leases.ok());
  ASSERT_EQ(leases->size(), 2u);
  EXPECT_EQ((*leases)[1].service(), "web");
  EXPECT_EQ((*leases)[1].vip(), web.vip());
  EXPECT_EQ((*leases)[1].pool(), "10.100.0.0/24");
  EXPECT_FALSE((*leases)[1].pinned());
  EXPECT_TRUE(LeasedVips(*registry_, "globex").empty());
  EXPECT_EQ(metrics_.VipPoolSize("10.100.0.0/24").Value(), 253);
  EXPECT_EQ(metrics_.VipPoolUsed("10.100.0.0/24").Value(), 2);
}

TEST_F(ServiceRegistryTest, DnsZoneComesFromOptions) {
  options_.dns_zone = "svc.example";
  registry_ = Make();
  Attach(Connector("acme", "edge-1"), kTwoServices, std::make_shared<RecordingLink>());
  EXPECT_EQ(Find("acme", "web").dns_name(), "web.acme.svc.example");
}

TEST_F(ServiceRegistryTest, RefusesBadVipAndDnsOptions) {
  struct Case {
    std::string pool;
    std::string zone;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"10.100.0.0/33", "ferry.internal", "vip_pools[0] \"10.100.0.0/33\""},
      {"10.100.0.0/24", "Ferry.internal", "dns_zone \"Ferry.internal\""},
      {"10.100.0.0/24", "ferry..internal", "dns_zone"},
      {"10.100.0.0/24", "", "dns_zone is empty"},
  };
  for (const Case& c : cases) {
    ServiceRegistry::Options options = DefaultOptions();
    options.vip_pools.emplace_back().set_cidr(c.pool);
    options.dns_zone = c.zone;
    auto registry = ServiceRegistry::Create(&store_, &metrics_, options);
    EXPECT_EQ(registry.status().code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(std::string(registry.status().message()), HasSubstr(c.message));
  }
}

TEST_F(ServiceRegistryTest, SameVipsAfterARegistryRestartOverTheSameStore) {
  const SpiffeId id = Connector("acme", "edge-1");
  Attach(id, kTwoServices, std::make_shared<RecordingLink>());
  absl::StatusOr<v1::Service> api = registry_->RegisterApiService(ApiSpec("ollama-api"));
  ASSERT_TRUE(api.ok()) << api.status();
  const std::vector<std::string> before = LeasedVips(*registry_, "acme");
  ASSERT_EQ(before.size(), 3u);
  const std::string web = Find("acme", "web").vip();

  registry_ = Make();
  // The API service has its VIP at once; the config services' leases wait for their connector.
  EXPECT_EQ(Find("acme", "ollama-api").vip(), api->vip());
  EXPECT_EQ(LeasedVips(*registry_, "acme"), before);
  now_ += absl::Seconds(5);
  Attach(id, kTwoServices, std::make_shared<RecordingLink>());
  EXPECT_EQ(Find("acme", "web").vip(), web);
  EXPECT_EQ(LeasedVips(*registry_, "acme"), before);
  // The grace period after the restart passes; the services came back, so nothing is released.
  now_ += absl::Seconds(30);
  registry_->Tick();
  EXPECT_EQ(LeasedVips(*registry_, "acme"), before);
}

TEST_F(ServiceRegistryTest, LeasesNotClaimedWithinGraceAfterRestartAreReleased) {
  const SpiffeId id = Connector("acme", "edge-1");
  Attach(id, kTwoServices, std::make_shared<RecordingLink>());
  const std::string web = Find("acme", "web").vip();
  registry_ = Make();
  now_ += absl::Seconds(9);
  registry_->Tick();
  EXPECT_EQ(LeasedVips(*registry_, "acme").size(), 2u);
  now_ += absl::Seconds(2);
  registry_->Tick();
  EXPECT_TRUE(LeasedVips(*registry_, "acme").empty());
  EXPECT_EQ(metrics_.VipPoolUsed("10.100.0.0/24").Value(), 0);
  // Released into cooldown: web gets its address back when it returns.
  Attach(id, kTwoServices, std::make_shared<RecordingLink>());
  EXPECT_EQ(Find("acme", "web").vip(), web);
}

TEST_F(ServiceRegistryTest, PinnedVipIsHonouredAndConflictsRefuseTheHello) {
  const char kPinned[] = R"pb(services {
                                name: "db"
                                protocol: PROTOCOL_TCP
                                pinned_vip: "10.100.0.42"
                                backends { address: "127.0.0.1:5432" }
                              })pb";
  Attach(Connector("acme", "edge-1"), kPinned, std::make_shared<RecordingLink>());
  EXPECT_EQ(Find("acme", "db").vip(), "10.100.0.42");
  absl::StatusOr<std::vector<v1::Lease>> leases = registry_->ListLeases("acme");
  ASSERT_TRUE(leases.ok());
  ASSERT_EQ(leases->size(), 1u);
  EXPECT_TRUE((*leases)[0].pinned());
  EXPECT_EQ(registry_->BuildSnapshot(relay_).services(0).vip(), "10.100.0.42");

  // Another tenant pinning the same address: ALREADY_EXISTS naming the holder; nothing attached.
  absl::StatusOr<uint64_t> taken = registry_->AttachConnector(
      Connector("globex", "edge-1"), "peer", HelloWith(kPinned), std::make_shared<RecordingLink>());
  EXPECT_EQ(taken.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(taken.status().message()),
              HasSubstr("hello.services[0]: VIP 10.100.0.42 is already leased to acme/db"));
  EXPECT_TRUE(registry_->ListServices("globex").empty());
  EXPECT_TRUE(registry_->ListConnectors().size() == 1u);

  // A pin outside the pool, through the admin API.
  absl::StatusOr<v1::Service> outside = registry_->RegisterApiService(ApiSpec("api", "10.9.9.9"));
  EXPECT_EQ(outside.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(outside.status().message()), HasSubstr("outside the VIP pools"));
  EXPECT_EQ(registry_->ListServices("acme").size(), 1u);
  absl::StatusOr<v1::Service> pinned = registry_->RegisterApiService(ApiSpec("api", "10.100.0.7"));
  ASSERT_TRUE(pinned.ok()) << pinned.status();
  EXPECT_EQ(pinned->vip(), "10.100.0.7");
  EXPECT_EQ(pinned->dns_name(), "api.acme.ferry.internal");
}

TEST_F(ServiceRegistryTest, ExhaustedPoolRefusesTheHelloAndGivesItsLeasesBack) {
  // A /30 holds one address.
  options_.vip_pools.emplace_back().set_cidr("10.9.0.0/30");
  registry_ = Make();
  absl::StatusOr<uint64_t> serial =
      registry_->AttachConnector(Connector("acme", "edge-1"), "peer", HelloWith(kTwoServices),
                                 std::make_shared<RecordingLink>());
  EXPECT_EQ(serial.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(serial.status().message()),
              HasSubstr("VIP pool 10.9.0.0/30 (1 addresses) is exhausted"));
  EXPECT_TRUE(registry_->ListServices("").empty());
  EXPECT_TRUE(registry_->ListConnectors().empty());
  // The address the first service got was given back at once, so a smaller Hello fits.
  EXPECT_TRUE(LeasedVips(*registry_, "").empty());
  Attach(Connector("globex", "edge-1"), R"pb(services {
                                               name: "web"
                                               protocol: PROTOCOL_TCP
                                               backends { address: "127.0.0.1:1" }
                                             })pb",
         std::make_shared<RecordingLink>());
  EXPECT_EQ(Find("globex", "web").vip(), "10.9.0.2");
  // And the admin API hears the same refusal.
  absl::StatusOr<v1::Service> api = registry_->RegisterApiService(ApiSpec("ollama-api"));
  EXPECT_EQ(api.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(registry_->ListServices("acme").size(), 0u);
}

TEST_F(ServiceRegistryTest, ConfigServiceWithdrawnAfterGraceReleasesItsVipIntoCooldown) {
  const SpiffeId id = Connector("acme", "edge-1");
  const uint64_t serial = Attach(id, kTwoServices, std::make_shared<RecordingLink>());
  const std::string web = Find("acme", "web").vip();
  registry_->DetachConnector(id, serial);
  now_ += absl::Seconds(9);
  registry_->Tick();
  EXPECT_EQ(LeasedVips(*registry_, "acme").size(), 2u);  // Still within the grace period.
  now_ += absl::Seconds(2);
  registry_->Tick();
  EXPECT_TRUE(LeasedVips(*registry_, "acme").empty());
  EXPECT_EQ(metrics_.VipPoolUsed("10.100.0.0/24").Value(), 0);

  // Cooling: another service may not pin it...
  absl::StatusOr<v1::Service> squatter = registry_->RegisterApiService(ApiSpec("squatter", web));
  EXPECT_EQ(squatter.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(squatter.status().message()), HasSubstr("released by acme/web"));
  // ...but web, back within the cooldown, gets it again.
  now_ += absl::Seconds(30);
  const uint64_t again = Attach(id, kTwoServices, std::make_shared<RecordingLink>());
  EXPECT_EQ(Find("acme", "web").vip(), web);

  // Gone for good: after the cooldown another service may have it.
  registry_->DetachConnector(id, again);
  now_ += absl::Seconds(11);
  registry_->Tick();
  now_ += absl::Seconds(59);
  EXPECT_EQ(registry_->RegisterApiService(ApiSpec("squatter", web)).status().code(),
            absl::StatusCode::kUnavailable);
  now_ += absl::Seconds(1);
  absl::StatusOr<v1::Service> later = registry_->RegisterApiService(ApiSpec("squatter", web));
  ASSERT_TRUE(later.ok()) << later.status();
  EXPECT_EQ(later->vip(), web);
}

TEST_F(ServiceRegistryTest, ServiceDroppedFromAHelloReleasesItsVip) {
  const SpiffeId id = Connector("acme", "edge-1");
  const uint64_t serial = Attach(id, kTwoServices, std::make_shared<RecordingLink>());
  const std::string echo = Find("acme", "echo").vip();
  ASSERT_TRUE(registry_
                  ->UpdateConnector(id, serial, HelloWith(R"pb(services {
                                                                 name: "web"
                                                                 protocol: PROTOCOL_TCP
                                                                 backends { address: "a:1" }
                                                               })pb"))
                  .ok());
  EXPECT_THAT(LeasedVips(*registry_, "acme"), ElementsAre("web=" + Find("acme", "web").vip()));
  EXPECT_EQ(registry_->RegisterApiService(ApiSpec("other", echo)).status().code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(ServiceRegistryTest, DeregisteredApiServiceReleasesItsVipIntoCooldown) {
  absl::StatusOr<v1::Service> api = registry_->RegisterApiService(ApiSpec("ollama-api"));
  ASSERT_TRUE(api.ok()) << api.status();
  EXPECT_EQ(metrics_.VipPoolUsed("10.100.0.0/24").Value(), 1);
  ASSERT_TRUE(registry_->DeregisterApiService("acme", "ollama-api").ok());
  EXPECT_TRUE(LeasedVips(*registry_, "acme").empty());
  EXPECT_EQ(metrics_.VipPoolUsed("10.100.0.0/24").Value(), 0);
  EXPECT_EQ(registry_->RegisterApiService(ApiSpec("other", api->vip())).status().code(),
            absl::StatusCode::kUnavailable);
  absl::StatusOr<v1::Service> back = registry_->RegisterApiService(ApiSpec("ollama-api"));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->vip(), api->vip());
}

TEST_F(ServiceRegistryTest, RefusedHelloKeepsAndPublishesARePinnedMove) {
  const SpiffeId id = Connector("acme", "edge-1");
  const uint64_t serial = Attach(id, kTwoServices, std::make_shared<RecordingLink>());
  ASSERT_TRUE(registry_->RegisterApiService(ApiSpec("holder", "10.100.0.200")).ok());
  int notified = 0;
  registry_->Subscribe([&] { ++notified; });
  const uint64_t version = registry_->route_version();
  // web moves to its new pin; "zz" (after web in name order) wants a taken address.
  const absl::Status refused = registry_->UpdateConnector(id, serial, HelloWith(R"pb(
                                                            services {
                                                              name: "web"
                                                              protocol: PROTOCOL_TCP
                                                              pinned_vip: "10.100.0.99"
                                                              backends { address: "127.0.0.1:8080" }
                                                            }
                                                            services {
                                                              name: "zz"
                                                              protocol: PROTOCOL_TCP
                                                              pinned_vip: "10.100.0.200"
                                                              backends { address: "127.0.0.1:8080" }
                                                            }
                                                          )pb"));
  EXPECT_EQ(refused.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(refused.message()), HasSubstr("hello.services[1]: VIP 10.100.0.200"));
  EXPECT_EQ(Find("acme", "web").vip(), "10.100.0.99");
  EXPECT_GT(registry_->route_version(), version);
  EXPECT_EQ(notified, 1);
  // The refused Hello removed nothing: echo is still there.
  EXPECT_EQ(registry_->ListServices("acme").size(), 3u);
}

// --- Data-plane sessions ------------------------------------------------------------------------

class RegistrySessionTest : public ServiceRegistryTest {
 protected:
  void SetUp() override {
    options_.session_ttl = absl::Minutes(1);
    options_.max_sessions_per_agent = 2;
    ServiceRegistryTest::SetUp();
    serial_ = Attach(edge_, kTwoServices, link_);
    ASSERT_TRUE(registry_->SetWatcherAddresses(relay_, 1, "10.0.0.9:6000", "10.0.0.9:6001").ok());
    ASSERT_TRUE(registry_->SetWatcherAddresses(edge_, 2, "10.0.0.5:7000", "10.0.0.5:7001").ok());
  }

  v1::OpenSessionResponse MustOpen(const std::string& service) {
    absl::StatusOr<v1::OpenSessionResponse> opened = registry_->OpenSession(agent_, service);
    EXPECT_TRUE(opened.ok()) << opened.status();
    return opened.value_or(v1::OpenSessionResponse());
  }

  const SpiffeId edge_ = Connector("acme", "edge-1");
  const SpiffeId agent_{"ferry.local", "acme", "agent", "laptop"};
  std::shared_ptr<RecordingLink> link_ = std::make_shared<RecordingLink>();
  uint64_t serial_ = 0;
};

TEST_F(RegistrySessionTest, UnknownOrUnroutedServiceIsNotFound) {
  absl::StatusOr<v1::OpenSessionResponse> unknown = registry_->OpenSession(agent_, "nope");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(unknown.status().message()), HasSubstr("\"nope\""));

  v1::ServiceSpec spec = HelloWith(kTwoServices).services(0);
  spec.set_name("later");
  spec.set_tenant("acme");
  spec.set_connector("edge-2");  // not connected
  ASSERT_TRUE(registry_->RegisterApiService(spec).ok());
  absl::StatusOr<v1::OpenSessionResponse> unrouted = registry_->OpenSession(agent_, "later");
  EXPECT_EQ(unrouted.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(unrouted.status().message()), HasSubstr("not routed"));
  EXPECT_TRUE(registry_->ListSessions("").empty());
}

TEST_F(RegistrySessionTest, OpenedSessionReachesItsRelayAndConnectorInANewVersion) {
  int notified = 0;
  registry_->Subscribe([&] { ++notified; });
  const uint64_t version = registry_->route_version();
  const v1::OpenSessionResponse opened = MustOpen("echo");
  EXPECT_GT(registry_->route_version(), version);
  EXPECT_EQ(notified, 1);

  const v1::Service echo = Find("acme", "echo");
  EXPECT_NE(opened.agent_hop().session_id(), 0u);
  EXPECT_EQ(opened.agent_hop().key().size(), 32u);
  EXPECT_EQ(opened.relay_address(), "10.0.0.9:6000");
  EXPECT_EQ(opened.relay_stream_address(), "10.0.0.9:6001");
  EXPECT_EQ(opened.service_id(), echo.id());
  EXPECT_EQ(opened.vip(), echo.vip());
  EXPECT_FALSE(opened.vip().empty());
  EXPECT_EQ(opened.protocol(), v1::PROTOCOL_UDP);
  EXPECT_EQ(opened.ttl().seconds(), 60);

  const v1::RouteSnapshot relay = registry_->BuildSnapshot(relay_);
  EXPECT_EQ(relay.version(), registry_->route_version());
  ASSERT_EQ(relay.sessions_size(), 1);
  EXPECT_EQ(relay.sessions(0).agent_hop().session_id(), opened.agent_hop().session_id());
  EXPECT_EQ(relay.sessions(0).agent_hop().key(), opened.agent_hop().key());
  EXPECT_EQ(relay.sessions(0).connector_address(), "10.0.0.5:7000");
  EXPECT_EQ(relay.sessions(0).connector_stream_address(), "10.0.0.5:7001");

  const v1::RouteSnapshot connector = registry_->BuildSnapshot(edge_);
  ASSERT_EQ(connector.sessions_size(), 1);
  EXPECT_FALSE(connector.sessions(0).has_agent_hop());
  EXPECT_EQ(connector.sessions(0).connector_hop().session_id(),
            relay.sessions(0).connector_hop().session_id());
  EXPECT_EQ(connector.sessions(0).connector_hop().key(), relay.sessions(0).connector_hop().key());
  // Another relay and another connector see none of it.
  EXPECT_EQ(
      registry_->BuildSnapshot(SpiffeId{"ferry.local", "ops", "relay", "relay-2"}).sessions_size(),
      0);
  EXPECT_EQ(registry_->BuildSnapshot(Connector("acme", "edge-2")).sessions_size(), 0);
  EXPECT_EQ(metrics_.sessions_open().Value(), 1);
}

TEST_F(RegistrySessionTest, AgentCapIsResourceExhausted) {
  MustOpen("echo");
  MustOpen("web");
  absl::StatusOr<v1::OpenSessionResponse> third = registry_->OpenSession(agent_, "echo");
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(third.status().message()), HasSubstr("--max_sessions_per_agent"));
  EXPECT_EQ(registry_->ListSessions("acme").size(), 2u);
}

TEST_F(RegistrySessionTest, ExpiredSessionsLeaveAtTheNextTickInANewVersion) {
  MustOpen("echo");
  now_ += absl::Seconds(30);
  MustOpen("web");
  uint64_t version = registry_->route_version();
  now_ += absl::Seconds(29);
  registry_->Keepalive(edge_, serial_);  // the connector stays; only sessions may change
  registry_->Tick();
  EXPECT_EQ(registry_->route_version(), version);
  EXPECT_EQ(registry_->ListSessions("acme").size(), 2u);
  EXPECT_TRUE(link_->closed.empty());

  now_ += absl::Seconds(1);  // the first session's TTL is over
  registry_->Keepalive(edge_, serial_);
  registry_->Tick();
  EXPECT_GT(registry_->route_version(), version);
  std::vector<v1::SessionInfo> left = registry_->ListSessions("acme");
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].service(), "web");
  EXPECT_EQ(registry_->BuildSnapshot(relay_).sessions_size(), 1);
  EXPECT_EQ(metrics_.sessions_open().Value(), 1);
}

TEST_F(RegistrySessionTest, SessionsOfAServiceThatLeavesTheRoutesAreDropped) {
  MustOpen("echo");
  MustOpen("web");
  // The connector's config no longer has echo.
  ASSERT_TRUE(registry_
                  ->UpdateConnector(edge_, serial_, HelloWith(R"pb(
                                      services {
                                        name: "web"
                                        protocol: PROTOCOL_TCP
                                        backends { address: "127.0.0.1:8080" }
                                      }
                                    )pb"))
                  .ok());
  std::vector<v1::SessionInfo> left = registry_->ListSessions("acme");
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].service(), "web");

  // The connector goes away for longer than its grace: web leaves too.
  registry_->DetachConnector(edge_, serial_);
  now_ += options_.connector_grace;
  registry_->Tick();
  EXPECT_TRUE(registry_->ListSessions("acme").empty());
  EXPECT_EQ(registry_->BuildSnapshot(relay_).sessions_size(), 0);
  EXPECT_EQ(metrics_.sessions_open().Value(), 0);
}

TEST_F(RegistrySessionTest, RelayStreamEndKeepsItsSessionsAndConnectorMoveIsPushed) {
  MustOpen("echo");
  uint64_t version = registry_->route_version();
  registry_->ClearWatcherAddresses(relay_, 1);
  EXPECT_EQ(registry_->route_version(), version);
  EXPECT_EQ(registry_->BuildSnapshot(relay_).sessions_size(), 1);
  // Without a relay, no new session.
  absl::StatusOr<v1::OpenSessionResponse> no_relay = registry_->OpenSession(agent_, "web");
  EXPECT_EQ(no_relay.status().code(), absl::StatusCode::kUnavailable);

  // The connector's data plane comes back on another port: its relay hears of it.
  ASSERT_TRUE(registry_->SetWatcherAddresses(edge_, 3, "10.0.0.5:7100", "10.0.0.5:7101").ok());
  EXPECT_GT(registry_->route_version(), version);
  const v1::RouteSnapshot relay = registry_->BuildSnapshot(relay_);
  ASSERT_EQ(relay.sessions_size(), 1);
  EXPECT_EQ(relay.sessions(0).connector_address(), "10.0.0.5:7100");
}

TEST_F(RegistrySessionTest, BadAnnouncementsAreInvalidArgument) {
  absl::Status bad = registry_->SetWatcherAddresses(relay_, 4, "10.0.0.9:0", "");
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.message()), HasSubstr("udp_address \"10.0.0.9:0\""));
  // The relay's earlier stream still counts.
  EXPECT_TRUE(registry_->OpenSession(agent_, "echo").ok());
  absl::Status agent = registry_->SetWatcherAddresses(agent_, 5, "10.0.0.1:1", "");
  EXPECT_EQ(agent.code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ServiceRegistryTest, RefusesBadSessionOptions) {
  ServiceRegistry::Options options = DefaultOptions();
  options.session_ttl = absl::ZeroDuration();
  absl::StatusOr<std::unique_ptr<ServiceRegistry>> registry =
      ServiceRegistry::Create(&store_, &metrics_, options);
  EXPECT_EQ(registry.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(registry.status().message()), HasSubstr("--session_ttl"));
  options = DefaultOptions();
  options.max_sessions_per_agent = 0;
  registry = ServiceRegistry::Create(&store_, &metrics_, options);
  EXPECT_EQ(registry.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ferry
