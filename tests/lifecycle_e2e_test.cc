// Service lifecycle end to end (issue 6, "Done when"): the real Intermediate,
// relay, connector and agent as processes with real certificates, real
// backends (tests/backends) killed and restarted by the test, and a real DNS
// server (dnsmasq) for discovery.
//
//  - each checker kind (TCP, HTTP, UDP, gRPC; ICMP in the netns variant)
//    detects a killed backend and its recovery, and the Intermediate's pushed
//    routes lose and regain it; the detection-to-withdrawal time is printed
//    against interval x unhealthy_threshold;
//  - traffic moves off a dead backend while UDP and TCP flows run;
//  - a bad config edit is refused with the old config still serving, and the
//    error shows in GetStatus; a good edit (rename-on-save, no SIGHUP) applies
//    with unchanged services' flows intact;
//  - DNS discovery follows a changed record and keeps the last set while the
//    DNS server is down;
//  - an API-registered service is reachable through the agent, survives an
//    Intermediate restart, and leaves when deregistered.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "discovery/testing/dnsmasq_server.h"
#include "ferry/v1/admin.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/backends/backend_process.h"
#include "tests/backends/udp_flows.h"
#include "tests/harness/channels.h"
#include "tests/harness/fabric.h"
#include "tests/harness/fabric_test_base.h"
#include "tests/harness/metrics_scrape.h"
#include "tests/harness/route_watcher.h"

namespace ferry {
namespace {

using backends::BackendOptions;
using backends::BackendProcess;
using backends::UdpExchangeOptions;
using backends::UdpFlowSet;
using backends::UdpFlowSpec;
using backends::UdpFlowStats;
using harness::AgentSpec;
using harness::ConnectorSpec;
using harness::Datagrams;
using harness::Describe;
using harness::FabricOptions;
using harness::FabricService;
using harness::Scrape;
using harness::Service;
using harness::UdpEcho;

constexpr char kAcme[] = "acme";

// Fast checks so the test is quick: 200 ms apart, 3 failures out, 2 successes back.
constexpr absl::Duration kInterval = absl::Milliseconds(200);
constexpr int kUnhealthyThreshold = 3;
constexpr int kHealthyThreshold = 2;

v1::HealthCheck FastCheck() {
  v1::HealthCheck check;
  check.mutable_interval()->set_nanos(absl::ToInt64Nanoseconds(kInterval));
  check.mutable_timeout()->set_nanos(150 * 1000 * 1000);
  check.set_unhealthy_threshold(kUnhealthyThreshold);
  check.set_healthy_threshold(kHealthyThreshold);
  return check;
}

FabricService Checked(FabricService service, v1::HealthCheck check) {
  service.health_check = std::move(check);
  return service;
}

// Whether `address` is among the backends of route `name` in `snapshot`.
bool Routes(const v1::RouteSnapshot& snapshot, const std::string& name,
            const std::string& address) {
  const v1::RouteService* route = harness::FindRoute(snapshot, name);
  if (route == nullptr) return false;
  for (const std::string& backend : route->backends()) {
    if (backend == address) return true;
  }
  return false;
}

// One TCP connection held open across a change (blocking, 5 s timeouts).
class HeldConnection {
 public:
  ~HeldConnection() {
    if (fd_ >= 0) close(fd_);
  }
  // Connects to "127.0.0.1:port".
  bool Connect(const std::string& address) {
    const size_t colon = address.rfind(':');
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
    if (inet_pton(AF_INET, address.substr(0, colon).c_str(), &sin.sin_addr) != 1) return false;
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    timeval timeout{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    return connect(fd_, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) == 0;
  }
  // Sends `line` and reads until as many bytes came back; "" on error.
  std::string Exchange(const std::string& line) {
    if (send(fd_, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size())) {
      return "";
    }
    std::string got;
    char buffer[256];
    while (got.size() < line.size()) {
      const ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
      if (n <= 0) return "";
      got.append(buffer, static_cast<size_t>(n));
    }
    return got;
  }

 private:
  int fd_ = -1;
};

class LifecycleE2eTest : public harness::FabricTest {
 protected:
  // An mTLS channel as acme's admin.
  std::shared_ptr<grpc::Channel> Admin() {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        fabric_->Channel(kAcme, "admin", "acme-admin");
    EXPECT_TRUE(channel.ok()) << channel.status();
    return channel.ok() ? *channel : nullptr;
  }

  std::vector<v1::Service> ListServices() {
    auto stub = v1::Admin::NewStub(Admin());
    v1::ListServicesResponse response;
    auto context = harness::ContextWithDeadline(absl::Seconds(5));
    grpc::Status status = stub->ListServices(context.get(), v1::ListServicesRequest(), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return {response.services().begin(), response.services().end()};
  }

  std::optional<v1::Service> FindService(const std::string& name) {
    for (v1::Service& service : ListServices()) {
      if (service.spec().name() == name) return service;
    }
    return std::nullopt;
  }

  // Polls ListServices until the backend `address` of `service` has `health`.
  bool WaitBackendHealth(const std::string& service, const std::string& address,
                         v1::HealthState health, absl::Duration timeout = absl::Seconds(20)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      if (std::optional<v1::Service> s = FindService(service)) {
        for (const v1::BackendStatus& backend : s->backends()) {
          if (backend.address() == address && backend.health() == health) return true;
        }
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    return false;
  }

  // A route watcher with a relay identity of its own (no data-plane
  // addresses, so the Intermediate gives it no sessions).
  std::unique_ptr<harness::RouteWatcher> WatchRoutes(const std::string& name) {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        fabric_->Channel(harness::kFabricOperatorTenant, "relay", name);
    EXPECT_TRUE(channel.ok()) << channel.status();
    if (!channel.ok()) return nullptr;
    auto watcher = std::make_unique<harness::RouteWatcher>(*channel, name);
    EXPECT_TRUE(watcher->Start().ok());
    return watcher;
  }
};

// One service per checker kind, each with its own backend. All four
// backends are killed at once; each kind's withdrawal from the pushed routes
// is timed, then all are restarted and come back.
TEST_F(LifecycleE2eTest, EveryCheckerKindDetectsAKilledBackendAndItsRecovery) {
  BackendOptions tcp_options;
  tcp_options.name = "tcp-b";
  tcp_options.tcp_echo = true;
  BackendOptions http_options;
  http_options.name = "http-b";
  http_options.http = true;
  BackendOptions udp_options = UdpEcho("udp-b", "udp-b:");
  BackendOptions grpc_options;
  grpc_options.name = "grpc-b";
  grpc_options.grpc_health = true;
  BackendProcess* tcp = StartBackend(tcp_options);
  BackendProcess* http = StartBackend(http_options);
  BackendProcess* udp = StartBackend(udp_options);
  BackendProcess* grpc = StartBackend(grpc_options);
  ASSERT_TRUE(tcp && http && udp && grpc);

  v1::HealthCheck tcp_check = FastCheck();
  tcp_check.mutable_tcp();
  v1::HealthCheck http_check = FastCheck();
  http_check.mutable_http()->set_path("/");
  http_check.mutable_http()->set_expected_body_substring("hello from http-b");
  v1::HealthCheck udp_check = FastCheck();
  udp_check.mutable_udp()->set_send("ping");
  udp_check.mutable_udp()->set_expect_prefix("udp-b:ping");
  v1::HealthCheck grpc_check = FastCheck();
  grpc_check.mutable_grpc();

  struct Case {
    std::string kind;
    std::string service;
    BackendProcess* backend;
    std::string address;
  };
  const std::vector<Case> cases = {
      {"tcp", "svc-tcp", tcp, tcp->tcp_echo()},
      {"http", "svc-http", http, http->http()},
      {"udp", "svc-udp", udp, udp->udp_echo()},
      {"grpc", "svc-grpc", grpc, grpc->grpc_health()},
  };
  FabricOptions options;
  options.connectors.push_back(ConnectorSpec{
      kAcme,
      "edge-1",
      {Checked(Service("svc-tcp", v1::PROTOCOL_TCP, {tcp->tcp_echo()}), tcp_check),
       Checked(Service("svc-http", v1::PROTOCOL_TCP, {http->http()}), http_check),
       Checked(Service("svc-udp", v1::PROTOCOL_UDP, {udp->udp_echo()}), udp_check),
       Checked(Service("svc-grpc", v1::PROTOCOL_TCP, {grpc->grpc_health()}), grpc_check)}});
  ASSERT_NO_FATAL_FAILURE(StartFabric(std::move(options)));
  std::unique_ptr<harness::RouteWatcher> watcher = WatchRoutes("route-watch");
  ASSERT_NE(watcher, nullptr);

  for (const Case& c : cases) {
    ASSERT_TRUE(WaitBackendHealth(c.service, c.address, v1::HEALTH_STATE_HEALTHY))
        << c.kind << ": the backend never became healthy";
  }
  const std::map<std::string, std::string> vips = [&] {
    std::map<std::string, std::string> out;
    for (const v1::Service& s : ListServices()) out[s.spec().name()] = s.vip();
    return out;
  }();
  ASSERT_TRUE(watcher
                  ->WaitFor([&](const v1::RouteSnapshot& snapshot) {
                    for (const Case& c : cases) {
                      if (!Routes(snapshot, c.service, c.address)) return false;
                    }
                    return true;
                  })
                  .ok());

  // Kill every backend at once and time each kind's withdrawal.
  const absl::Time killed_at = absl::Now();
  for (const Case& c : cases) ASSERT_TRUE(c.backend->Kill().ok());
  std::map<std::string, absl::Duration> withdrawn;
  const absl::Time deadline = killed_at + absl::Seconds(20);
  while (withdrawn.size() < cases.size() && absl::Now() < deadline) {
    absl::StatusOr<harness::RouteWatcher::Received> next =
        watcher->WaitFor([](const v1::RouteSnapshot&) { return true; }, deadline - absl::Now());
    if (!next.ok()) break;
    for (const Case& c : cases) {
      if (withdrawn.count(c.kind) == 0 && harness::FindRoute(next->snapshot, c.service) &&
          !Routes(next->snapshot, c.service, c.address)) {
        withdrawn[c.kind] = next->received_at - killed_at;
      }
    }
  }
  const absl::Duration expected = kInterval * kUnhealthyThreshold;
  for (const Case& c : cases) {
    ASSERT_EQ(withdrawn.count(c.kind), 1u) << c.kind << ": the backend was never withdrawn";
    std::cout << "detection-to-withdrawal kind=" << c.kind << " interval=" << kInterval
              << " unhealthy_threshold=" << kUnhealthyThreshold << " (" << expected
              << ") measured=" << withdrawn[c.kind] << "\n";
    EXPECT_TRUE(WaitBackendHealth(c.service, c.address, v1::HEALTH_STATE_UNHEALTHY));
    std::optional<v1::Service> s = FindService(c.service);
    ASSERT_TRUE(s.has_value());
    EXPECT_EQ(s->health(), v1::HEALTH_STATE_UNHEALTHY) << c.kind;
    EXPECT_EQ(s->vip(), vips.at(c.service)) << c.kind << ": a down service keeps its VIP";
  }
  const std::string metrics = Scrape(fabric_->connector("edge-1").admin_address());
  EXPECT_EQ(harness::MetricValueOr0(metrics, "ferry_connector_backends",
                                    {{"service", "svc-tcp"}, {"health", "unhealthy"}}),
            1);

  // Bring them back: each returns to the routes after healthy_threshold passes.
  const absl::Time restarted_at = absl::Now();
  for (const Case& c : cases) ASSERT_TRUE(c.backend->Restart().ok()) << c.kind;
  absl::StatusOr<harness::RouteWatcher::Received> back = watcher->WaitFor(
      [&](const v1::RouteSnapshot& snapshot) {
        for (const Case& c : cases) {
          if (!Routes(snapshot, c.service, c.address)) return false;
        }
        return true;
      },
      absl::Seconds(20));
  ASSERT_TRUE(back.ok()) << "not every backend came back: " << back.status();
  std::cout << "recovery-to-route (all kinds, healthy_threshold=" << kHealthyThreshold
            << "): " << back->received_at - restarted_at << "\n";
  for (const Case& c : cases) {
    EXPECT_TRUE(WaitBackendHealth(c.service, c.address, v1::HEALTH_STATE_HEALTHY)) << c.kind;
  }
}

// Two backends each serving UDP echo and HTTP; UDP flows and HTTP requests
// run through the agent while one backend is killed. Flows on it move to the
// other (the connector closes them; the agent re-opens them onto a routed
// backend), and every HTTP request after detection is answered by the other.
TEST_F(LifecycleE2eTest, TrafficMovesOffADeadBackendWhileUdpAndTcpFlowsRun) {
  BackendOptions a_options = UdpEcho("a", "a:");
  a_options.http = true;
  BackendOptions b_options = UdpEcho("b", "b:");
  b_options.http = true;
  BackendProcess* a = StartBackend(a_options);
  BackendProcess* b = StartBackend(b_options);
  ASSERT_TRUE(a && b);
  v1::HealthCheck udp_check = FastCheck();
  udp_check.mutable_udp();
  v1::HealthCheck http_check = FastCheck();
  http_check.mutable_http();
  ASSERT_NO_FATAL_FAILURE(StartSimpleFabric(
      {Checked(Service("echo", v1::PROTOCOL_UDP, {a->udp_echo(), b->udp_echo()}, 7101), udp_check),
       Checked(Service("web", v1::PROTOCOL_TCP, {a->http(), b->http()}, 7102), http_check)},
      {"echo", "web"}));
  ASSERT_TRUE(WaitBackendHealth("echo", a->udp_echo(), v1::HEALTH_STATE_HEALTHY));
  ASSERT_TRUE(WaitBackendHealth("web", a->http(), v1::HEALTH_STATE_HEALTHY));
  const std::string udp_listener = fabric_->agent("laptop").exposure("echo");
  const std::string web_listener = fabric_->agent("laptop").exposure("web");

  constexpr size_t kFlows = 16;
  absl::StatusOr<std::unique_ptr<UdpFlowSet>> flows =
      UdpFlowSet::Open(std::vector<UdpFlowSpec>(kFlows, UdpFlowSpec{udp_listener, {"a:", "b:"}}));
  ASSERT_TRUE(flows.ok()) << flows.status();
  ASSERT_TRUE((*flows)->Exchange(Datagrams(2)).ok());
  std::vector<size_t> on_a;
  for (size_t i = 0; i < kFlows; ++i) {
    ASSERT_EQ((*flows)->flow(i).foreign, 0u);
    if ((*flows)->flow(i).answered_by_prefix.count("a:") != 0) on_a.push_back(i);
  }
  ASSERT_FALSE(on_a.empty()) << "no flow hashed to backend a; nothing to move";
  std::map<size_t, uint64_t> b_before;
  auto from_b = [&](size_t i) {
    const auto& by_prefix = (*flows)->flow(i).answered_by_prefix;
    auto it = by_prefix.find("b:");
    return it == by_prefix.end() ? uint64_t{0} : it->second;
  };
  for (size_t i : on_a) b_before[i] = from_b(i);

  // An HTTP exchange through the tunnel: the greeting names the backend.
  auto get = [&]() -> std::string {
    absl::StatusOr<harness::HttpGetResult> result = harness::HttpGet(web_listener, "/");
    return result.ok() ? result->body : "";
  };

  const absl::Time killed_at = absl::Now();
  ASSERT_TRUE(a->Kill().ok());
  UdpExchangeOptions round = Datagrams(1);
  round.max_attempts = 1;
  round.retry_after = absl::Milliseconds(200);
  absl::Duration moved_after = absl::InfiniteDuration();
  while (absl::Now() < killed_at + absl::Seconds(20)) {
    (void)(*flows)->Exchange(round);  // Losses while a is being detected are expected.
    bool all_moved = true;
    for (size_t i : on_a) all_moved &= from_b(i) > b_before[i];
    if (all_moved) {
      moved_after = absl::Now() - killed_at;
      break;
    }
  }
  ASSERT_NE(moved_after, absl::InfiniteDuration()) << "UDP flows on the dead backend never moved";
  std::cout << "udp flows moved to the healthy backend " << moved_after << " after the kill\n";
  for (size_t i = 0; i < kFlows; ++i) EXPECT_EQ((*flows)->flow(i).foreign, 0u) << i;

  // TCP: once a is out, every new connection reaches b.
  ASSERT_TRUE(WaitBackendHealth("web", a->http(), v1::HEALTH_STATE_UNHEALTHY));
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(get(), "hello from b\n") << "request " << i;
  }
  // Traffic keeps flowing on the moved flows.
  ASSERT_TRUE((*flows)->Exchange(Datagrams(3)).ok());
  const UdpFlowStats total = (*flows)->Total();
  EXPECT_EQ(total.foreign, 0u) << Describe(total);
}

// A broken edit is refused whole: the connector keeps serving its last good
// config, counts the error, and the Intermediate shows it in GetStatus.
// Fixing the file clears it.
TEST_F(LifecycleE2eTest, BadConfigEditIsRefusedAndTheOldConfigKeepsServing) {
  BackendProcess* echo = StartBackend(UdpEcho("echo", "e:"));
  ASSERT_NE(echo, nullptr);
  const std::vector<FabricService> services = {
      Service("echo", v1::PROTOCOL_UDP, {echo->udp_echo()}, 7201)};
  ASSERT_NO_FATAL_FAILURE(StartSimpleFabric(services, {"echo"}));
  const std::string listener = fabric_->agent("laptop").exposure("echo");
  absl::StatusOr<std::unique_ptr<UdpFlowSet>> flows =
      UdpFlowSet::Open(std::vector<UdpFlowSpec>(4, UdpFlowSpec{listener, {"e:"}}));
  ASSERT_TRUE(flows.ok());
  ASSERT_TRUE((*flows)->Exchange(Datagrams(2)).ok());

  // A port out of range: valid YAML, invalid config.
  ASSERT_TRUE(
      fabric_
          ->WriteConnectorConfigText(
              "edge-1", absl::StrCat("intermediates: [\"", fabric_->intermediate().grpc_address(),
                                     "\"]\nservices:\n  - name: echo\n    protocol: "
                                     "PROTOCOL_UDP\n    port: 70000\n    backends:\n"
                                     "      - address: \"",
                                     echo->udp_echo(), "\"\n"))
          .ok());
  const std::string admin = fabric_->connector("edge-1").admin_address();
  absl::StatusOr<double> errors = harness::WaitForMetricAtLeast(
      admin, "ferry_connector_config_reloads_total", {{"result", "error"}}, 1, absl::Seconds(10));
  ASSERT_TRUE(errors.ok()) << "the bad edit was not noticed: " << errors.status();
  EXPECT_EQ(harness::MetricValueOr0(Scrape(admin), "ferry_connector_config_last_reload_ok"), 0);

  // The error, with the field path, reaches GetStatus.
  auto stub = v1::Admin::NewStub(Admin());
  std::string config_error;
  for (absl::Time deadline = absl::Now() + absl::Seconds(10);
       config_error.empty() && absl::Now() < deadline; absl::SleepFor(absl::Milliseconds(50))) {
    v1::GetStatusResponse status;
    auto context = harness::ContextWithDeadline(absl::Seconds(5));
    ASSERT_TRUE(stub->GetStatus(context.get(), v1::GetStatusRequest(), &status).ok());
    for (const v1::Peer& peer : status.connectors()) config_error = peer.config_error();
  }
  EXPECT_TRUE(absl::StrContains(config_error, "services[0].port")) << config_error;

  // The old config still serves.
  ASSERT_TRUE((*flows)->Exchange(Datagrams(3)).ok());
  const UdpFlowStats total = (*flows)->Total();
  EXPECT_EQ(total.answered, total.sent) << Describe(total);
  ASSERT_TRUE(FindService("echo").has_value());

  // A fixed file clears the error.
  ASSERT_TRUE(fabric_->RewriteConnectorServices("edge-1", services).ok());
  bool cleared = false;
  for (absl::Time deadline = absl::Now() + absl::Seconds(10); !cleared && absl::Now() < deadline;
       absl::SleepFor(absl::Milliseconds(50))) {
    v1::GetStatusResponse status;
    auto context = harness::ContextWithDeadline(absl::Seconds(5));
    ASSERT_TRUE(stub->GetStatus(context.get(), v1::GetStatusRequest(), &status).ok());
    cleared = status.connectors_size() == 1 && status.connectors(0).config_error().empty();
  }
  EXPECT_TRUE(cleared);
}

// Editors save by writing a temporary file and renaming it over the config.
// The connector notices that by itself (no SIGHUP), registers the added
// service, and the unchanged service's flows carry on: an open TCP
// connection keeps echoing and UDP flows lose nothing.
TEST_F(LifecycleE2eTest, RenameOnSaveAddsAServiceAndUnchangedFlowsStayIntact) {
  BackendOptions options = UdpEcho("echo", "e:");
  options.tcp_echo = true;
  BackendProcess* echo = StartBackend(options);
  BackendProcess* extra = StartBackend(UdpEcho("extra", "x:"));
  ASSERT_TRUE(echo && extra);
  std::vector<FabricService> services = {
      Service("echo", v1::PROTOCOL_UDP, {echo->udp_echo()}, 7301),
      Service("echo-tcp", v1::PROTOCOL_TCP, {echo->tcp_echo()}, 7302)};
  ASSERT_NO_FATAL_FAILURE(StartSimpleFabric(services, {"echo", "echo-tcp"}));
  const std::string udp_listener = fabric_->agent("laptop").exposure("echo");

  absl::StatusOr<std::unique_ptr<UdpFlowSet>> flows =
      UdpFlowSet::Open(std::vector<UdpFlowSpec>(8, UdpFlowSpec{udp_listener, {"e:"}}));
  ASSERT_TRUE(flows.ok());
  ASSERT_TRUE((*flows)->Exchange(Datagrams(2)).ok());
  HeldConnection tcp;
  ASSERT_TRUE(tcp.Connect(fabric_->agent("laptop").exposure("echo-tcp")));
  ASSERT_EQ(tcp.Exchange("before the edit\n"), "before the edit\n");

  services.push_back(Service("extra", v1::PROTOCOL_UDP, {extra->udp_echo()}, 7303));
  ASSERT_TRUE(fabric_->RewriteConnectorServices("edge-1", services).ok());  // No SIGHUP.
  bool registered = false;
  for (absl::Time deadline = absl::Now() + absl::Seconds(10); !registered && absl::Now() < deadline;
       absl::SleepFor(absl::Milliseconds(50))) {
    std::optional<v1::Service> s = FindService("extra");
    registered = s.has_value() && !s->connector().empty();
  }
  ASSERT_TRUE(registered) << "the renamed-over config was not picked up";

  EXPECT_EQ(tcp.Exchange("after the edit\n"), "after the edit\n") << "the TCP flow broke";
  UdpExchangeOptions strict = Datagrams(5);
  strict.max_attempts = 1;
  strict.retry_after = absl::Seconds(2);
  ASSERT_TRUE((*flows)->Exchange(strict).ok());
  const UdpFlowStats total = (*flows)->Total();
  EXPECT_EQ(total.answered, total.sent) << "unchanged flows lost datagrams: " << Describe(total);
  EXPECT_EQ(total.foreign, 0u);

  // The added service is reachable through a new agent.
  ASSERT_TRUE(fabric_->StartAgent(AgentSpec{kAcme, "laptop-2", {"extra"}}).ok());
  absl::StatusOr<std::unique_ptr<UdpFlowSet>> extra_flows =
      UdpFlowSet::Open({UdpFlowSpec{fabric_->agent("laptop-2").exposure("extra"), {"x:"}}});
  ASSERT_TRUE(extra_flows.ok());
  ASSERT_TRUE((*extra_flows)->Exchange(Datagrams(3)).ok());
  EXPECT_EQ((*extra_flows)->Total().answered, 3u) << Describe((*extra_flows)->Total());
}

// A dns:// backend follows its A record: dnsmasq answers with 127.0.0.2,
// then (hosts file rewritten) 127.0.0.3; each address has its own echo
// backend. While dnsmasq is down the last set stays and failures are counted.
TEST_F(LifecycleE2eTest, DnsDiscoveryFollowsAChangedRecord) {
  if (!discovery::testing::DnsmasqServer::Installed()) {
    GTEST_SKIP() << "dnsmasq is not installed (scripts/setup.sh installs dnsmasq-base)";
  }
  BackendOptions two_options = UdpEcho("two", "two:");
  two_options.listen["udp_echo"] = "127.0.0.2:0";
  BackendProcess* two = StartBackend(two_options);
  ASSERT_NE(two, nullptr);
  const std::string port = two->udp_echo().substr(two->udp_echo().rfind(':') + 1);
  BackendOptions three_options = UdpEcho("three", "three:");
  three_options.listen["udp_echo"] = "127.0.0.3:" + port;
  BackendProcess* three = StartBackend(three_options);
  ASSERT_NE(three, nullptr);

  discovery::testing::DnsmasqServer::Options dns_options;
  dns_options.ttl_seconds = 1;
  dns_options.hosts = {"127.0.0.2 echo.test.internal"};
  absl::StatusOr<std::unique_ptr<discovery::testing::DnsmasqServer>> dns =
      discovery::testing::DnsmasqServer::Start(dns_options);
  ASSERT_TRUE(dns.ok()) << dns.status();

  FabricOptions options;
  ConnectorSpec connector{
      kAcme, "edge-1", {Service("echo", v1::PROTOCOL_UDP, {"dns://echo.test.internal:" + port})}};
  connector.extra_yaml = absl::StrCat("dns_servers: [\"", (*dns)->address(),
                                      "\"]\ndns_min_ttl: \"1s\"\ndns_max_ttl: \"2s\"\n");
  options.connectors.push_back(std::move(connector));
  options.agents.push_back(AgentSpec{kAcme, "laptop", {"echo"}});
  ASSERT_NO_FATAL_FAILURE(StartFabric(std::move(options)));
  const std::string listener = fabric_->agent("laptop").exposure("echo");

  // Sends on fresh flows until one is answered with `prefix`.
  auto answered_by = [&](const std::string& prefix, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      absl::StatusOr<std::unique_ptr<UdpFlowSet>> flows =
          UdpFlowSet::Open({UdpFlowSpec{listener, {"two:", "three:"}}});
      if (!flows.ok()) return false;
      UdpExchangeOptions once = Datagrams(1);
      once.max_attempts = 2;
      once.retry_after = absl::Milliseconds(300);
      (void)(*flows)->Exchange(once);
      if ((*flows)->Total().answered_by_prefix.count(prefix) != 0) return true;
      absl::SleepFor(absl::Milliseconds(100));
    }
    return false;
  };
  ASSERT_TRUE(answered_by("two:", absl::Seconds(15)));
  ASSERT_TRUE(WaitBackendHealth("echo", "127.0.0.2:" + port, v1::HEALTH_STATE_UNKNOWN));

  ASSERT_TRUE((*dns)->SetHosts({"127.0.0.3 echo.test.internal"}).ok());
  const absl::Time changed_at = absl::Now();
  ASSERT_TRUE(answered_by("three:", absl::Seconds(15))) << "discovery did not follow the record";
  std::cout << "dns change followed after " << absl::Now() - changed_at << "\n";
  std::optional<v1::Service> service = FindService("echo");
  ASSERT_TRUE(service.has_value());
  ASSERT_EQ(service->backends_size(), 1);
  EXPECT_EQ(service->backends(0).address(), "127.0.0.3:" + port);
  EXPECT_EQ(service->backends(0).source(), "dns://echo.test.internal:" + port);

  // DNS down: resolutions fail and are counted, the last set keeps serving.
  const std::string admin = fabric_->connector("edge-1").admin_address();
  const double errors_before = harness::SumSamples(
      Scrape(admin), "ferry_connector_dns_resolutions_total", {{"result", "error"}});
  ASSERT_TRUE((*dns)->Stop().ok());
  bool counted = false;
  for (absl::Time deadline = absl::Now() + absl::Seconds(15); !counted && absl::Now() < deadline;
       absl::SleepFor(absl::Milliseconds(200))) {
    counted = harness::SumSamples(Scrape(admin), "ferry_connector_dns_resolutions_total",
                                  {{"result", "error"}}) > errors_before;
  }
  EXPECT_TRUE(counted) << "failed resolutions were not counted";
  EXPECT_TRUE(answered_by("three:", absl::Seconds(5))) << "the last known set was dropped";
}

// A service registered through the admin API names the connector that serves
// it; the connector health-checks and routes it without a restart, the agent
// reaches it, it survives an Intermediate restart, and deregistering removes
// it from the connector's routes.
TEST_F(LifecycleE2eTest, ApiRegisteredServiceIsReachableThroughTheAgent) {
  BackendProcess* echo = StartBackend(UdpEcho("api-echo", "api:"));
  BackendProcess* base = StartBackend(UdpEcho("base", "base:"));
  ASSERT_TRUE(echo && base);
  FabricOptions options;
  options.connectors.push_back(ConnectorSpec{
      kAcme, "edge-1", {Service("base", v1::PROTOCOL_UDP, {base->udp_echo()}, 7401)}});
  ASSERT_NO_FATAL_FAILURE(StartFabric(std::move(options)));

  v1::RegisterServiceRequest request;
  v1::ServiceSpec* spec = request.mutable_service();
  spec->set_name("api-echo");
  spec->set_protocol(v1::PROTOCOL_UDP);
  spec->set_port(7402);
  spec->set_connector("edge-1");
  spec->add_backends()->set_address(echo->udp_echo());
  *spec->mutable_health_check() = FastCheck();
  spec->mutable_health_check()->mutable_udp()->set_expect_prefix("api:");
  {
    auto stub = v1::Admin::NewStub(Admin());
    v1::RegisterServiceResponse response;
    auto context = harness::ContextWithDeadline(absl::Seconds(5));
    grpc::Status status = stub->RegisterService(context.get(), request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  // The connector health-checks it: its report turns the backend HEALTHY.
  ASSERT_TRUE(WaitBackendHealth("api-echo", echo->udp_echo(), v1::HEALTH_STATE_HEALTHY));

  ASSERT_TRUE(fabric_->StartAgent(AgentSpec{kAcme, "laptop", {"api-echo"}}).ok());
  auto exchange = [&](int datagrams) {
    absl::StatusOr<std::unique_ptr<UdpFlowSet>> flows =
        UdpFlowSet::Open({UdpFlowSpec{fabric_->agent("laptop").exposure("api-echo"), {"api:"}}});
    if (!flows.ok()) return UdpFlowStats{};
    (void)(*flows)->Exchange(Datagrams(datagrams));
    return (*flows)->Total();
  };
  UdpFlowStats stats = exchange(3);
  EXPECT_EQ(stats.answered, 3u) << Describe(stats);

  // Registrations survive an Intermediate restart (and the connector
  // reports health again on its new stream).
  ASSERT_TRUE(fabric_->RestartIntermediate().ok());
  ASSERT_TRUE(fabric_->WaitRouted(absl::Seconds(30)).ok());
  ASSERT_TRUE(WaitBackendHealth("api-echo", echo->udp_echo(), v1::HEALTH_STATE_HEALTHY));
  bool reachable = false;
  for (absl::Time deadline = absl::Now() + absl::Seconds(30);
       !reachable && absl::Now() < deadline;) {
    reachable = exchange(1).answered == 1;
  }
  EXPECT_TRUE(reachable) << "the API service was not reachable after the restart";

  // Deregistered: gone from the registry and from the connector's routes.
  const std::string admin = fabric_->connector("edge-1").admin_address();
  {
    auto stub = v1::Admin::NewStub(Admin());
    v1::DeregisterServiceRequest deregister;
    deregister.set_name("api-echo");
    v1::DeregisterServiceResponse response;
    auto context = harness::ContextWithDeadline(absl::Seconds(5));
    grpc::Status status = stub->DeregisterService(context.get(), deregister, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  EXPECT_FALSE(FindService("api-echo").has_value());
  bool gone = false;
  for (absl::Time deadline = absl::Now() + absl::Seconds(10); !gone && absl::Now() < deadline;
       absl::SleepFor(absl::Milliseconds(100))) {
    gone = harness::MetricValueOr0(Scrape(admin), "ferry_connector_backends",
                                   {{"service", "api-echo"}, {"health", "healthy"}}) == 0 &&
           exchange(1).answered == 0;
  }
  EXPECT_TRUE(gone) << "the deregistered service still answers";
}

// ICMP checks need an address the test can take away: run by
// tests/lifecycle_icmp_netns_test.sh inside a network namespace of its own,
// where 10.77.0.2 sits on the namespace's own loopback interface.
TEST_F(LifecycleE2eTest, IcmpCheckerDetectsARemovedAddressAndItsReturn) {
  if (std::getenv("FERRY_LIFECYCLE_NETNS") == nullptr) {
    GTEST_SKIP() << "runs inside the network namespace of tests/lifecycle_icmp_netns_test.sh";
  }
  const std::string kBackend = "10.77.0.2";
  v1::HealthCheck check = FastCheck();
  check.mutable_icmp();
  FabricOptions options;
  options.connectors.push_back(ConnectorSpec{
      kAcme, "edge-1", {Checked(Service("pinged", v1::PROTOCOL_ICMP, {kBackend}, 1), check)}});
  ASSERT_NO_FATAL_FAILURE(StartFabric(std::move(options)));
  std::unique_ptr<harness::RouteWatcher> watcher = WatchRoutes("route-watch");
  ASSERT_NE(watcher, nullptr);
  ASSERT_TRUE(WaitBackendHealth("pinged", kBackend, v1::HEALTH_STATE_HEALTHY));

  ASSERT_EQ(std::system("ip addr del 10.77.0.2/32 dev lo"), 0);
  const absl::Time removed_at = absl::Now();
  absl::StatusOr<harness::RouteWatcher::Received> withdrawn = watcher->WaitFor(
      [&](const v1::RouteSnapshot& snapshot) {
        return harness::FindRoute(snapshot, "pinged") != nullptr &&
               !Routes(snapshot, "pinged", kBackend);
      },
      absl::Seconds(20));
  ASSERT_TRUE(withdrawn.ok()) << withdrawn.status();
  std::cout << "detection-to-withdrawal kind=icmp interval=" << kInterval
            << " unhealthy_threshold=" << kUnhealthyThreshold << " ("
            << kInterval * kUnhealthyThreshold
            << ") measured=" << withdrawn->received_at - removed_at << "\n";

  ASSERT_EQ(std::system("ip addr add 10.77.0.2/32 dev lo"), 0);
  absl::StatusOr<harness::RouteWatcher::Received> back = watcher->WaitFor(
      [&](const v1::RouteSnapshot& snapshot) { return Routes(snapshot, "pinged", kBackend); },
      absl::Seconds(20));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(WaitBackendHealth("pinged", kBackend, v1::HEALTH_STATE_HEALTHY));
}

}  // namespace
}  // namespace ferry
