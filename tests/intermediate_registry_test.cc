// The Intermediate's registry and route streaming (issue 3), end to end
// against the real ferry-intermediate: test connectors speak
// Registry.ConnectorSession (Hello, keepalives, health reports) and test
// watchers speak Routes.WatchRoutes (ACKing each snapshot), and the tests
// assert what each party sees. Every watcher's versions must strictly
// increase (checked for every watcher at the end of every test).
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/proto_time.h"
#include "ferry/v1/admin.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/harness/channels.h"
#include "tests/harness/dev_pki_fixture.h"
#include "tests/harness/intermediate_process.h"
#include "tests/harness/metrics_scrape.h"
#include "tests/harness/route_watcher.h"
#include "tests/harness/test_connector.h"

namespace ferry {
namespace {

using harness::DevPki;
using harness::FindRoute;
using harness::IntermediateProcess;
using harness::RouteWatcher;
using harness::TestConnector;
using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

constexpr char kTenant[] = "acme";
// The fixture's Intermediate withdraws a detached connector's services after
// this grace period and asks connectors for a keepalive this often.
constexpr absl::Duration kGrace = absl::Seconds(1);
constexpr absl::Duration kKeepaliveInterval = absl::Seconds(1);

std::vector<std::string> Backends(const v1::RouteService& route) {
  return {route.backends().begin(), route.backends().end()};
}

class RegistryTestBase : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<DevPki*> pki = harness::SharedDevPki();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *pki;
  }

  void TearDown() override {
    for (const auto& watcher : watchers_) {
      EXPECT_TRUE(watcher->VersionsStrictlyIncrease())
          << "a watcher saw a version repeat or go back: " << watcher->DescribeVersions();
    }
    watchers_.clear();
  }

  static harness::IntermediateOptions Options() {
    harness::IntermediateOptions options;
    options.connector_grace = kGrace;
    options.keepalive_interval = kKeepaliveInterval;
    return options;
  }

  std::shared_ptr<grpc::Channel> ChannelAs(const std::string& role, const std::string& name,
                                           const std::string& tenant = kTenant) {
    return harness::TestChannel(intermediate_->grpc_address(), pki_->Issue(tenant, role, name));
  }

  std::unique_ptr<v1::Admin::Stub> Admin() {
    return v1::Admin::NewStub(ChannelAs("admin", "alice"));
  }

  // A connector `name` of kTenant that said Hello with `services` and got
  // its Welcome (stored in *welcome when given); sends keepalives.
  std::unique_ptr<TestConnector> Connect(const std::string& name,
                                         const std::vector<v1::ServiceSpec>& services,
                                         v1::Welcome* welcome = nullptr) {
    auto connector = std::make_unique<TestConnector>(ChannelAs("connector", name));
    v1::Hello hello;
    hello.set_version("test");
    for (const v1::ServiceSpec& spec : services) *hello.add_services() = spec;
    absl::Status opened = connector->Open(hello);
    EXPECT_TRUE(opened.ok()) << opened;
    absl::StatusOr<v1::Welcome> welcomed = connector->WaitForWelcome();
    EXPECT_TRUE(welcomed.ok()) << welcomed.status();
    if (welcomed.ok() && welcome != nullptr) *welcome = *welcomed;
    connector->StartKeepalives(kKeepaliveInterval / 4);
    return connector;
  }

  // A started route watcher with a `role` certificate named `name`; owned by
  // the fixture, which checks its versions at the end of the test.
  RouteWatcher& Watch(const std::string& name, const std::string& role = "relay") {
    watchers_.push_back(std::make_unique<RouteWatcher>(ChannelAs(role, name), name));
    absl::Status started = watchers_.back()->Start();
    EXPECT_TRUE(started.ok()) << started;
    return *watchers_.back();
  }

  grpc::Status Register(const v1::ServiceSpec& spec, v1::Service* registered = nullptr) {
    v1::RegisterServiceRequest request;
    *request.mutable_service() = spec;
    v1::RegisterServiceResponse response;
    grpc::Status status =
        Admin()->RegisterService(harness::ContextWithDeadline().get(), request, &response);
    if (registered != nullptr) *registered = response.service();
    return status;
  }
  grpc::Status Deregister(const std::string& name) {
    v1::DeregisterServiceRequest request;
    request.set_name(name);
    v1::DeregisterServiceResponse response;
    return Admin()->DeregisterService(harness::ContextWithDeadline().get(), request, &response);
  }
  std::vector<v1::Service> ListServices() {
    v1::ListServicesResponse response;
    grpc::Status status = Admin()->ListServices(harness::ContextWithDeadline().get(),
                                                v1::ListServicesRequest(), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return {response.services().begin(), response.services().end()};
  }
  v1::GetStatusResponse Status() {
    v1::GetStatusResponse response;
    grpc::Status status =
        Admin()->GetStatus(harness::ContextWithDeadline().get(), v1::GetStatusRequest(), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  DevPki* pki_ = nullptr;
  std::unique_ptr<IntermediateProcess> intermediate_;
  std::vector<std::unique_ptr<RouteWatcher>> watchers_;
};

class IntermediateRegistryTest : public RegistryTestBase {
 protected:
  void SetUp() override {
    RegistryTestBase::SetUp();
    if (HasFatalFailure()) return;
    absl::StatusOr<std::unique_ptr<IntermediateProcess>> started =
        IntermediateProcess::Start(*pki_, Options());
    ASSERT_TRUE(started.ok()) << started.status();
    intermediate_ = *std::move(started);
  }
};

TEST_F(IntermediateRegistryTest, HelloIsAnsweredWithWelcomeCarryingServiceIds) {
  v1::Welcome welcome;
  auto connector = Connect("web-1",
                           {harness::MakeServiceSpec("grafana-web", {"127.0.0.1:3000"}),
                            harness::MakeServiceSpec("ollama-api", {"127.0.0.1:11434"})},
                           &welcome);
  EXPECT_EQ(FromDurationProto(welcome.keepalive_interval()), kKeepaliveInterval);
  ASSERT_EQ(welcome.services_size(), 2);
  std::map<std::string, uint32_t> ids;
  for (const v1::Service& service : welcome.services()) {
    EXPECT_NE(service.id(), 0u) << service.spec().name();
    EXPECT_EQ(service.spec().tenant(), kTenant);  // defaulted to the connector's
    EXPECT_EQ(service.connector(), "web-1");
    EXPECT_EQ(service.origin(), "config");
    ids[service.spec().name()] = service.id();
  }
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_NE(ids["grafana-web"], ids["ollama-api"]);

  // The admin API reports the same services with the same ids.
  std::map<std::string, uint32_t> listed;
  for (const v1::Service& service : ListServices()) listed[service.spec().name()] = service.id();
  EXPECT_EQ(listed, ids);
  v1::GetStatusResponse status = Status();
  ASSERT_EQ(status.connectors_size(), 1);
  EXPECT_EQ(status.connectors(0).identity().name(), "web-1");
  EXPECT_EQ(status.connectors(0).version(), "test");
}

TEST_F(IntermediateRegistryTest, RelayWatcherSeesTheConnectorsServices) {
  RouteWatcher& relay = Watch("relay-1");
  absl::StatusOr<RouteWatcher::Received> first =
      relay.WaitFor([](const v1::RouteSnapshot& s) { return s.version() > 0; });
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->snapshot.services_size(), 0);

  v1::Welcome welcome;
  auto connector =
      Connect("web-1", {harness::MakeServiceSpec("grafana-web", {"127.0.0.1:3000"})}, &welcome);
  ASSERT_EQ(welcome.services_size(), 1);
  absl::StatusOr<RouteWatcher::Received> got = relay.WaitForService("grafana-web");
  ASSERT_TRUE(got.ok()) << got.status();
  const v1::RouteService* route = FindRoute(got->snapshot, "grafana-web");
  EXPECT_EQ(route->service_id(), welcome.services(0).id());
  EXPECT_EQ(route->tenant(), kTenant);
  EXPECT_EQ(route->connector(), "web-1");
  EXPECT_EQ(route->port(), 3000u);
  EXPECT_THAT(Backends(*route), ElementsAre("127.0.0.1:3000"));
  EXPECT_GT(got->snapshot.version(), first->snapshot.version());
  EXPECT_TRUE(got->acked);

  // A connector watching routes sees only its own services.
  auto other = Connect("web-2", {harness::MakeServiceSpec("ollama-api", {"127.0.0.1:11434"})});
  RouteWatcher& web2 = Watch("web-2", "connector");
  absl::StatusOr<RouteWatcher::Received> own = web2.WaitForService("ollama-api");
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_EQ(FindRoute(own->snapshot, "grafana-web"), nullptr);
  ASSERT_TRUE(relay.WaitForService("ollama-api").ok());
}

TEST_F(IntermediateRegistryTest, UnhealthyBackendLeavesTheNextSnapshot) {
  RouteWatcher& relay = Watch("relay-1");
  auto connector = Connect(
      "web-1", {harness::MakeServiceSpec("grafana-web", {"127.0.0.1:3000", "127.0.0.1:3001"})});
  absl::StatusOr<RouteWatcher::Received> both = relay.WaitForService("grafana-web");
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_THAT(Backends(*FindRoute(both->snapshot, "grafana-web")),
              UnorderedElementsAre("127.0.0.1:3000", "127.0.0.1:3001"));

  ASSERT_TRUE(connector->SendHealth("grafana-web", {{"127.0.0.1:3000", v1::HEALTH_STATE_UNHEALTHY},
                                                    {"127.0.0.1:3001", v1::HEALTH_STATE_HEALTHY}}));
  auto backends_are = [](std::vector<std::string> want) {
    return [want](const v1::RouteSnapshot& s) {
      const v1::RouteService* route = FindRoute(s, "grafana-web");
      return route != nullptr && Backends(*route) == want;
    };
  };
  absl::StatusOr<RouteWatcher::Received> one = relay.WaitFor(backends_are({"127.0.0.1:3001"}));
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_GT(one->snapshot.version(), both->snapshot.version());
  // The admin view shows the backend's state too.
  std::vector<v1::Service> services = ListServices();
  ASSERT_EQ(services.size(), 1u);
  for (const v1::BackendStatus& backend : services[0].backends()) {
    EXPECT_EQ(backend.health(), backend.address() == "127.0.0.1:3000" ? v1::HEALTH_STATE_UNHEALTHY
                                                                      : v1::HEALTH_STATE_HEALTHY);
  }

  // Recovery brings it back.
  ASSERT_TRUE(connector->SendHealth("grafana-web", {{"127.0.0.1:3000", v1::HEALTH_STATE_HEALTHY},
                                                    {"127.0.0.1:3001", v1::HEALTH_STATE_HEALTHY}}));
  ASSERT_TRUE(relay.WaitFor(backends_are({"127.0.0.1:3000", "127.0.0.1:3001"})).ok());
}

// The stream ending, cleanly or not, withdraws the services after the grace
// period and not before.
class StreamEndTest : public IntermediateRegistryTest,
                      public ::testing::WithParamInterface<bool /*cancel*/> {};

TEST_P(StreamEndTest, ServicesLeaveTheRoutesAfterTheGracePeriod) {
  RouteWatcher& relay = Watch("relay-1");
  auto connector = Connect("web-1", {harness::MakeServiceSpec("grafana-web", {"127.0.0.1:3000"})});
  ASSERT_TRUE(relay.WaitForService("grafana-web").ok());

  const absl::Time ended = absl::Now();
  if (GetParam()) {
    connector->Cancel();
    ASSERT_TRUE(connector->WaitFinished(absl::Seconds(10)).ok());
  } else {
    absl::StatusOr<grpc::Status> status = connector->CloseAndWait();
    ASSERT_TRUE(status.ok()) << status.status();
    EXPECT_TRUE(status->ok()) << status->error_message();
  }
  absl::StatusOr<RouteWatcher::Received> gone =
      relay.WaitForNoService("grafana-web", kGrace + absl::Seconds(10));
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_GE(gone->received_at - ended, kGrace) << "withdrawn before the grace period ended";
  // A config-file service is forgotten with its connector.
  EXPECT_TRUE(ListServices().empty());
  EXPECT_EQ(Status().connectors_size(), 0);
}

INSTANTIATE_TEST_SUITE_P(HowTheStreamEnds, StreamEndTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Cancelled" : "ClosedCleanly";
                         });

TEST_F(IntermediateRegistryTest, MissedKeepalivesEndTheStream) {
  RouteWatcher& relay = Watch("relay-1");
  auto alive = Connect("web-1", {harness::MakeServiceSpec("grafana-web", {"127.0.0.1:3000"})});
  // A connector that says Hello and then goes silent.
  TestConnector silent(ChannelAs("connector", "web-2"));
  v1::Hello hello;
  *hello.add_services() = harness::MakeServiceSpec("ollama-api", {"127.0.0.1:11434"});
  ASSERT_TRUE(silent.Open(hello).ok());
  ASSERT_TRUE(silent.WaitForWelcome().ok());
  ASSERT_TRUE(relay.WaitForService("ollama-api").ok());

  absl::StatusOr<grpc::Status> status =
      silent.WaitFinished(3 * kKeepaliveInterval + kGrace + absl::Seconds(10));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->error_code(), grpc::StatusCode::UNAVAILABLE) << status->error_message();
  EXPECT_THAT(status->error_message(), ::testing::HasSubstr("keepalive"));
  absl::StatusOr<RouteWatcher::Received> gone =
      relay.WaitForNoService("ollama-api", kGrace + absl::Seconds(10));
  ASSERT_TRUE(gone.ok()) << gone.status();
  // The connector that kept sending keepalives is still served.
  EXPECT_NE(FindRoute(gone->snapshot, "grafana-web"), nullptr);
  EXPECT_FALSE(alive->finished());
}

TEST_F(IntermediateRegistryTest, ReconnectWithTheSameIdentityReplacesTheOldStream) {
  RouteWatcher& relay = Watch("relay-1");
  v1::Welcome first_welcome;
  auto first = Connect("web-1", {harness::MakeServiceSpec("grafana-web", {"127.0.0.1:3000"})},
                       &first_welcome);
  ASSERT_TRUE(relay.WaitForService("grafana-web").ok());

  v1::Welcome second_welcome;
  auto second = Connect("web-1", {harness::MakeServiceSpec("grafana-web", {"127.0.0.1:3000"})},
                        &second_welcome);
  absl::StatusOr<grpc::Status> old_status = first->WaitFinished(absl::Seconds(10));
  ASSERT_TRUE(old_status.ok()) << old_status.status();
  EXPECT_EQ(old_status->error_code(), grpc::StatusCode::ABORTED) << old_status->error_message();
  ASSERT_EQ(second_welcome.services_size(), 1);
  EXPECT_EQ(second_welcome.services(0).id(), first_welcome.services(0).id());

  // The old stream's end does not detach the new session: after the grace
  // period (and the Intermediate's 200 ms timer) the service is still routed.
  absl::SleepFor(kGrace + absl::Seconds(1));
  std::vector<v1::Service> services = ListServices();
  ASSERT_EQ(services.size(), 1u);
  EXPECT_EQ(services[0].connector(), "web-1");
  EXPECT_EQ(Status().connectors_size(), 1);
  EXPECT_NE(FindRoute(relay.received().back().snapshot, "grafana-web"), nullptr);

  // And the new session works.
  ASSERT_TRUE(second->SendHealth("grafana-web", {{"127.0.0.1:3000", v1::HEALTH_STATE_UNHEALTHY}}));
  absl::StatusOr<RouteWatcher::Received> unhealthy = relay.WaitFor([](const v1::RouteSnapshot& s) {
    const v1::RouteService* route = FindRoute(s, "grafana-web");
    return route != nullptr && route->backends_size() == 0;
  });
  EXPECT_TRUE(unhealthy.ok()) << unhealthy.status();
}

TEST_F(IntermediateRegistryTest, RegisterServicePushesApiServicesDownTheConnectorStream) {
  RouteWatcher& relay = Watch("relay-1");
  auto connector = Connect("web-1", {});
  v1::ServiceSpec spec = harness::MakeServiceSpec("ollama-api", {"127.0.0.1:11434"});
  spec.set_connector("web-1");
  v1::Service registered;
  grpc::Status status = Register(spec, &registered);
  ASSERT_TRUE(status.ok()) << status.error_message();

  absl::StatusOr<v1::ApiServices> pushed = connector->WaitForApiServices();
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  ASSERT_EQ(pushed->services_size(), 1);
  EXPECT_EQ(pushed->services(0).name(), "ollama-api");
  EXPECT_EQ(pushed->services(0).tenant(), kTenant);
  ASSERT_EQ(pushed->services(0).backends_size(), 1);
  EXPECT_EQ(pushed->services(0).backends(0).address(), "127.0.0.1:11434");

  absl::StatusOr<RouteWatcher::Received> routed = relay.WaitForService("ollama-api");
  ASSERT_TRUE(routed.ok()) << routed.status();
  EXPECT_EQ(FindRoute(routed->snapshot, "ollama-api")->service_id(), registered.id());
  EXPECT_EQ(FindRoute(routed->snapshot, "ollama-api")->connector(), "web-1");

  // Deregistering pushes the (now empty) full set and withdraws the route.
  status = Deregister("ollama-api");
  ASSERT_TRUE(status.ok()) << status.error_message();
  pushed = connector->WaitForApiServices();
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  EXPECT_EQ(pushed->services_size(), 0);
  EXPECT_TRUE(relay.WaitForNoService("ollama-api").ok());
}

TEST_F(IntermediateRegistryTest, NackIsCountedAndTheWatcherKeepsGettingLaterVersions) {
  RouteWatcher& relay = Watch("relay-1");
  relay.SetVerdict([](const v1::RouteSnapshot& s) {
    return FindRoute(s, "bad-svc") != nullptr && FindRoute(s, "good-svc") == nullptr
               ? "backend address family not supported"
               : "";
  });
  auto connector = Connect("web-1", {});
  absl::StatusOr<RouteWatcher::Received> before =
      relay.WaitFor([](const v1::RouteSnapshot& s) { return s.version() > 0; });
  ASSERT_TRUE(before.ok()) << before.status();
  // Let the connector's attach reach the watcher, then remember what it runs.
  const uint64_t current = Status().route_version();
  ASSERT_TRUE(
      relay.WaitFor([current](const v1::RouteSnapshot& s) { return s.version() >= current; }).ok());
  const uint64_t acked_before = relay.acked_version();

  v1::ServiceSpec bad = harness::MakeServiceSpec("bad-svc", {"127.0.0.1:9000"});
  bad.set_connector("web-1");
  ASSERT_TRUE(Register(bad).ok());
  absl::StatusOr<RouteWatcher::Received> nacked = relay.WaitForService("bad-svc");
  ASSERT_TRUE(nacked.ok()) << nacked.status();
  EXPECT_FALSE(nacked->acked);
  EXPECT_EQ(relay.acked_version(), acked_before);
  absl::StatusOr<double> nacks = harness::WaitForMetricAtLeast(intermediate_->admin_address(),
                                                               "ferry_route_nacks_total", {}, 1);
  ASSERT_TRUE(nacks.ok()) << nacks.status();
  EXPECT_EQ(*nacks, 1);
  // The server records the version the relay still runs, not the NACKed one.
  v1::GetStatusResponse status = Status();
  ASSERT_EQ(status.relays_size(), 1);
  EXPECT_EQ(status.relays(0).acked_route_version(), acked_before);

  // The stream goes on: the next change arrives as a later version and is ACKed.
  v1::ServiceSpec good = harness::MakeServiceSpec("good-svc", {"127.0.0.1:9001"});
  good.set_connector("web-1");
  ASSERT_TRUE(Register(good).ok());
  absl::StatusOr<RouteWatcher::Received> later = relay.WaitForService("good-svc");
  ASSERT_TRUE(later.ok()) << later.status();
  EXPECT_GT(later->snapshot.version(), nacked->snapshot.version());
  EXPECT_TRUE(later->acked);
  EXPECT_EQ(relay.acked_version(), later->snapshot.version());
  absl::StatusOr<std::string> metrics = harness::FetchMetrics(intermediate_->admin_address());
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(harness::MetricValue(*metrics, "ferry_route_nacks_total"), 1);
}

// A burst of changes faster than snapshots can be written: each watcher may
// skip versions (they coalesce) but must end at the last one, and never see a
// version go back.
TEST_F(IntermediateRegistryTest, BurstOfChangesConvergesWithStrictlyIncreasingVersions) {
  std::vector<RouteWatcher*> relays;
  for (int i = 0; i < 3; ++i) relays.push_back(&Watch(absl::StrCat("relay-", i)));
  constexpr int kBackends = 8;
  std::vector<std::string> backends;
  for (int i = 0; i < kBackends; ++i) backends.push_back(absl::StrCat("127.0.0.1:", 3000 + i));
  auto connector = Connect("web-1", {harness::MakeServiceSpec("grafana-web", backends)});
  for (RouteWatcher* relay : relays) ASSERT_TRUE(relay->WaitForService("grafana-web").ok());

  // Each report takes a different backend out than the one before, so each
  // one is a change (a new version).
  constexpr int kReports = 100;
  for (int i = 0; i < kReports; ++i) {
    std::vector<std::pair<std::string, v1::HealthState>> report;
    for (int b = 0; b < kBackends; ++b) {
      report.emplace_back(
          backends[b], b == i % kBackends ? v1::HEALTH_STATE_UNHEALTHY : v1::HEALTH_STATE_HEALTHY);
    }
    ASSERT_TRUE(connector->SendHealth("grafana-web", report));
  }
  // The stream is handled in order: once this keepalive is answered, every
  // report before it has been applied.
  v1::ConnectorMessage barrier;
  barrier.mutable_keepalive()->set_sent_unix_nanos(42);
  ASSERT_TRUE(connector->Send(barrier));
  ASSERT_TRUE(connector
                  ->WaitForCommand(
                      [](const v1::ConnectorCommand& c) {
                        return c.has_keepalive_ack() && c.keepalive_ack().sent_unix_nanos() == 42;
                      },
                      absl::Seconds(10))
                  .ok());
  const uint64_t final_version = Status().route_version();
  std::vector<std::string> final_backends = backends;
  final_backends.erase(final_backends.begin() + (kReports - 1) % kBackends);

  for (RouteWatcher* relay : relays) {
    absl::StatusOr<RouteWatcher::Received> last =
        relay->WaitFor([&](const v1::RouteSnapshot& s) { return s.version() == final_version; });
    ASSERT_TRUE(last.ok()) << last.status();
    const v1::RouteService* route = FindRoute(last->snapshot, "grafana-web");
    ASSERT_NE(route, nullptr);
    EXPECT_THAT(Backends(*route), ::testing::UnorderedElementsAreArray(final_backends));
    EXPECT_TRUE(last->acked);
    EXPECT_TRUE(relay->VersionsStrictlyIncrease()) << relay->DescribeVersions();
    // Every snapshot carries a fresh nonce.
    std::set<std::string> nonces;
    for (const RouteWatcher::Received& r : relay->received()) {
      EXPECT_TRUE(nonces.insert(r.snapshot.nonce()).second) << r.snapshot.nonce();
    }
  }
}

// --- Restart: state survives, connectors reconnect with backoff and converge. ----

class IntermediateRestartTest : public RegistryTestBase {};

TEST_F(IntermediateRestartTest, RegistrationsSurviveARestartAndConnectorsConverge) {
  absl::StatusOr<std::unique_ptr<IntermediateProcess>> started =
      IntermediateProcess::Start(*pki_, Options());
  ASSERT_TRUE(started.ok()) << started.status();
  intermediate_ = *std::move(started);
  const std::string grpc_address = intermediate_->grpc_address();
  const std::string state_dir = intermediate_->state_dir();

  v1::Hello hello;
  *hello.add_services() = harness::MakeServiceSpec("grafana-web", {"127.0.0.1:3000"});
  harness::ReconnectingConnector connector(ChannelAs("connector", "web-1"), hello);
  connector.Start();
  ASSERT_TRUE(connector.WaitForSessions(1, absl::Seconds(20)).ok());

  v1::ServiceSpec spec = harness::MakeServiceSpec("ollama-api", {"127.0.0.1:11434"});
  spec.set_connector("web-1");
  v1::Service registered;
  ASSERT_TRUE(Register(spec, &registered).ok());
  const uint64_t version_before = Status().route_version();

  absl::StatusOr<harness::ExitStatus> exit = intermediate_->Stop();
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(exit->ok()) << "SIGTERM should stop the Intermediate cleanly: " << exit->ToString();

  harness::IntermediateOptions options = Options();
  options.state_dir = state_dir;
  options.listen = grpc_address;  // where the connector keeps reconnecting
  started = IntermediateProcess::Start(*pki_, options);
  ASSERT_TRUE(started.ok()) << started.status();
  intermediate_ = *std::move(started);

  // The connector finds the new process on its own and is welcomed with the
  // API service it serves, under the same id.
  absl::StatusOr<v1::Welcome> welcome = connector.WaitForSessions(2, absl::Seconds(30));
  ASSERT_TRUE(welcome.ok()) << welcome.status();
  std::map<std::string, uint32_t> welcomed;
  for (const v1::Service& service : welcome->services()) {
    welcomed[service.spec().name()] = service.id();
  }
  EXPECT_EQ(welcomed["ollama-api"], registered.id());
  EXPECT_TRUE(welcomed.count("grafana-web"));

  std::vector<v1::Service> services = ListServices();
  bool found = false;
  for (const v1::Service& service : services) {
    if (service.spec().name() != "ollama-api") continue;
    found = true;
    EXPECT_EQ(service.id(), registered.id());
    EXPECT_EQ(service.origin(), "api");
    EXPECT_EQ(service.connector(), "web-1");
  }
  EXPECT_TRUE(found) << "the API registration did not survive the restart";
  EXPECT_GT(Status().route_version(), version_before);

  // A relay of the new process sees both services routed again.
  RouteWatcher& relay = Watch("relay-1");
  absl::StatusOr<RouteWatcher::Received> converged = relay.WaitFor([](const v1::RouteSnapshot& s) {
    return FindRoute(s, "ollama-api") != nullptr && FindRoute(s, "grafana-web") != nullptr;
  });
  ASSERT_TRUE(converged.ok()) << converged.status();
  EXPECT_GT(converged->snapshot.version(), version_before);
  EXPECT_EQ(FindRoute(converged->snapshot, "ollama-api")->service_id(), registered.id());
  connector.Stop();
}

}  // namespace
}  // namespace ferry
