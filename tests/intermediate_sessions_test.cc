// The Intermediate's Sessions service (issue 4), end to end against the real
// ferry-intermediate with real certificates: a test connector attaches over
// Registry.ConnectorSession and watches routes announcing its data-plane
// addresses, a relay watches routes announcing its own, and agents call
// Sessions.OpenSession. The tests assert what the agent gets, what the relay
// and the connector receive in their route snapshots (the connector never the
// agent's key), every refusal with its code, what Admin.ListSessions shows,
// and the session metrics.
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "dataplane/route_watcher.h"
#include "ferry/v1/admin.grpc.pb.h"
#include "ferry/v1/sessions.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/harness/channels.h"
#include "tests/harness/dev_pki_fixture.h"
#include "tests/harness/ferry_process.h"
#include "tests/harness/intermediate_process.h"
#include "tests/harness/metrics_scrape.h"
#include "tests/harness/route_watcher.h"
#include "tests/harness/stream_record.h"
#include "tests/harness/test_connector.h"

namespace ferry {
namespace {

using harness::DevPki;
using harness::IntermediateProcess;
using harness::RouteWatcher;
using harness::TestConnector;
using ::testing::HasSubstr;

constexpr char kTenant[] = "acme";
constexpr char kService[] = "echo";
constexpr char kConnectorName[] = "edge-1";
constexpr absl::Duration kKeepaliveInterval = absl::Seconds(1);
constexpr absl::Duration kSessionTtl = absl::Minutes(10);

// Data-plane addresses the watchers announce (nothing listens there: the
// Intermediate only records and hands them out).
constexpr char kConnectorUdp[] = "127.0.0.1:17001";
constexpr char kConnectorStream[] = "127.0.0.1:17002";
constexpr char kRelayUdp[] = "127.0.0.1:16001";
constexpr char kRelayStream[] = "127.0.0.1:16002";

// The session whose agent hop is `session_id` in `snapshot`, or null.
const v1::RouteSession* FindSession(const v1::RouteSnapshot& snapshot, uint64_t session_id) {
  for (const v1::RouteSession& session : snapshot.sessions()) {
    if (session.agent_hop().session_id() == session_id) return &session;
  }
  return nullptr;
}

// The session whose connector hop is `session_id` in `snapshot`, or null.
const v1::RouteSession* FindConnectorHop(const v1::RouteSnapshot& snapshot, uint64_t session_id) {
  for (const v1::RouteSession& session : snapshot.sessions()) {
    if (session.connector_hop().session_id() == session_id) return &session;
  }
  return nullptr;
}

class IntermediateSessionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<DevPki*> pki = harness::SharedDevPki();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *pki;
    Start({});
  }

  void TearDown() override {
    watchers_.clear();
    connectors_.clear();
  }

  // (Re)starts the Intermediate with these extra flags.
  void Start(const std::vector<std::string>& extra_flags) {
    watchers_.clear();
    connectors_.clear();
    intermediate_.reset();
    harness::IntermediateOptions options;
    options.connector_grace = absl::Seconds(1);
    options.keepalive_interval = kKeepaliveInterval;
    options.extra_flags = {absl::StrCat("--session_ttl=", absl::FormatDuration(kSessionTtl))};
    options.extra_flags.insert(options.extra_flags.end(), extra_flags.begin(), extra_flags.end());
    absl::StatusOr<std::unique_ptr<IntermediateProcess>> started =
        IntermediateProcess::Start(*pki_, options);
    ASSERT_TRUE(started.ok()) << started.status();
    intermediate_ = *std::move(started);
  }

  std::shared_ptr<grpc::Channel> ChannelAs(const std::string& role, const std::string& name,
                                           const std::string& tenant = kTenant) {
    return harness::TestChannel(intermediate_->grpc_address(), pki_->Issue(tenant, role, name));
  }

  // Connector kConnectorName serving `service` (TCP), attached and keeping
  // alive; stores the service's id from the Welcome in *service_id.
  void AttachConnector(uint32_t* service_id = nullptr) {
    auto connector = std::make_unique<TestConnector>(ChannelAs("connector", kConnectorName));
    v1::Hello hello;
    hello.set_version("test");
    *hello.add_services() = harness::MakeServiceSpec(kService, {"127.0.0.1:9000"});
    absl::Status opened = connector->Open(hello);
    ASSERT_TRUE(opened.ok()) << opened;
    absl::StatusOr<v1::Welcome> welcome = connector->WaitForWelcome();
    ASSERT_TRUE(welcome.ok()) << welcome.status();
    ASSERT_EQ(welcome->services_size(), 1);
    if (service_id != nullptr) *service_id = welcome->services(0).id();
    connector->StartKeepalives(kKeepaliveInterval / 4);
    connectors_.push_back(std::move(connector));
  }

  // A started route watcher of `role` announcing `udp` and `stream`, whose
  // first snapshot arrived (so its addresses are recorded).
  RouteWatcher& Watch(const std::string& role, const std::string& name, const std::string& udp,
                      const std::string& stream) {
    watchers_.push_back(std::make_unique<RouteWatcher>(ChannelAs(role, name), name));
    RouteWatcher& watcher = *watchers_.back();
    watcher.SetDataAddresses(udp, stream);
    absl::Status started = watcher.Start();
    EXPECT_TRUE(started.ok()) << started;
    absl::StatusOr<RouteWatcher::Received> first =
        watcher.WaitFor([](const v1::RouteSnapshot&) { return true; });
    EXPECT_TRUE(first.ok()) << first.status();
    return watcher;
  }
  RouteWatcher& WatchAsConnector() {
    return Watch("connector", kConnectorName, kConnectorUdp, kConnectorStream);
  }
  RouteWatcher& WatchAsRelay(const std::string& name = "relay-1") {
    return Watch("relay", name, kRelayUdp, kRelayStream);
  }

  // Sessions.OpenSession for `service` as `role` `name` of `tenant`.
  grpc::Status Open(const std::string& service, v1::OpenSessionResponse* response = nullptr,
                    const std::string& name = "laptop", const std::string& tenant = kTenant,
                    const std::string& role = "agent") {
    auto stub = v1::Sessions::NewStub(ChannelAs(role, name, tenant));
    v1::OpenSessionRequest request;
    request.set_service(service);
    v1::OpenSessionResponse ignored;
    return stub->OpenSession(harness::ContextWithDeadline().get(), request,
                             response != nullptr ? response : &ignored);
  }

  v1::OpenSessionResponse MustOpen(const std::string& service = kService) {
    v1::OpenSessionResponse response;
    grpc::Status status = Open(service, &response);
    EXPECT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
    return response;
  }

  v1::ListSessionsResponse ListSessions() {
    auto admin = v1::Admin::NewStub(ChannelAs("admin", "alice"));
    v1::ListSessionsResponse response;
    grpc::Status status = admin->ListSessions(harness::ContextWithDeadline().get(),
                                              v1::ListSessionsRequest(), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  std::string Metrics() {
    absl::StatusOr<std::string> metrics = harness::FetchMetrics(intermediate_->admin_address());
    EXPECT_TRUE(metrics.ok()) << metrics.status();
    return metrics.value_or("");
  }

  DevPki* pki_ = nullptr;
  std::unique_ptr<IntermediateProcess> intermediate_;
  std::vector<std::unique_ptr<TestConnector>> connectors_;
  std::vector<std::unique_ptr<RouteWatcher>> watchers_;
};

TEST_F(IntermediateSessionsTest, AgentGetsAKeyAndTheRelayAndConnectorGetTheirHops) {
  uint32_t service_id = 0;
  AttachConnector(&service_id);
  RouteWatcher& connector = WatchAsConnector();
  RouteWatcher& relay = WatchAsRelay();

  const v1::OpenSessionResponse opened = MustOpen();
  const uint64_t session_id = opened.agent_hop().session_id();
  EXPECT_NE(session_id, 0u);
  EXPECT_EQ(opened.agent_hop().key().size(), 32u);
  EXPECT_EQ(opened.relay_address(), kRelayUdp);
  EXPECT_EQ(opened.relay_stream_address(), kRelayStream);
  EXPECT_EQ(opened.service_id(), service_id);
  EXPECT_FALSE(opened.vip().empty());
  EXPECT_EQ(opened.protocol(), v1::PROTOCOL_TCP);
  EXPECT_EQ(opened.port(), 9000u);
  EXPECT_EQ(opened.ttl().seconds(), absl::ToInt64Seconds(kSessionTtl));

  // The relay: both hops, and where the connector takes frames.
  absl::StatusOr<RouteWatcher::Received> at_relay = relay.WaitFor(
      [&](const v1::RouteSnapshot& s) { return FindSession(s, session_id) != nullptr; });
  ASSERT_TRUE(at_relay.ok()) << at_relay.status();
  const v1::RouteSession& relayed = *FindSession(at_relay->snapshot, session_id);
  EXPECT_EQ(relayed.agent_hop().key(), opened.agent_hop().key());
  const uint64_t connector_hop = relayed.connector_hop().session_id();
  EXPECT_NE(connector_hop, 0u);
  EXPECT_NE(connector_hop, session_id);
  EXPECT_EQ(relayed.connector_hop().key().size(), 32u);
  EXPECT_NE(relayed.connector_hop().key(), opened.agent_hop().key());
  EXPECT_EQ(relayed.service_id(), service_id);
  EXPECT_EQ(relayed.tenant(), kTenant);
  EXPECT_EQ(relayed.agent(), "laptop");
  EXPECT_EQ(relayed.connector_address(), kConnectorUdp);
  EXPECT_EQ(relayed.connector_stream_address(), kConnectorStream);

  // The connector: its own hop only, never the agent's.
  absl::StatusOr<RouteWatcher::Received> at_connector = connector.WaitFor(
      [&](const v1::RouteSnapshot& s) { return FindConnectorHop(s, connector_hop) != nullptr; });
  ASSERT_TRUE(at_connector.ok()) << at_connector.status();
  const v1::RouteSession& served = *FindConnectorHop(at_connector->snapshot, connector_hop);
  EXPECT_FALSE(served.has_agent_hop());
  EXPECT_EQ(served.connector_hop().key(), relayed.connector_hop().key());
  EXPECT_EQ(served.service_id(), service_id);
  EXPECT_EQ(served.agent(), "laptop");
  for (const RouteWatcher::Received& r : connector.received()) {
    EXPECT_EQ(r.snapshot.SerializeAsString().find(opened.agent_hop().key()), std::string::npos)
        << "the connector received the agent's key in version " << r.snapshot.version();
  }

  const std::string metrics = Metrics();
  EXPECT_EQ(harness::MetricValue(metrics, "ferry_sessions_opened_total"), 1);
  EXPECT_EQ(harness::MetricValue(metrics, "ferry_sessions_open"), 1);
}

TEST_F(IntermediateSessionsTest, ListSessionsShowsTheSessionWithoutKeys) {
  AttachConnector();
  WatchAsConnector();
  WatchAsRelay();
  const v1::OpenSessionResponse opened = MustOpen();

  const v1::ListSessionsResponse listed = ListSessions();
  ASSERT_EQ(listed.sessions_size(), 1);
  const v1::SessionInfo& info = listed.sessions(0);
  EXPECT_EQ(info.session_id(), absl::StrFormat("%016x", opened.agent_hop().session_id()));
  EXPECT_EQ(info.tenant(), kTenant);
  EXPECT_EQ(info.service(), kService);
  EXPECT_EQ(info.agent(), "laptop");
  EXPECT_EQ(info.connector(), kConnectorName);
  EXPECT_EQ(info.relay(), "relay-1");
  EXPECT_EQ(info.path(), v1::SESSION_PATH_RELAY);
  const int64_t expires = info.expires_at().seconds();
  EXPECT_GT(expires, absl::ToUnixSeconds(absl::Now()));
  EXPECT_LE(expires, absl::ToUnixSeconds(absl::Now() + kSessionTtl));
  EXPECT_EQ(listed.SerializeAsString().find(opened.agent_hop().key()), std::string::npos);

  // Another tenant's admin sees none of it.
  auto globex = v1::Admin::NewStub(ChannelAs("admin", "bob", "globex"));
  v1::ListSessionsResponse other;
  ASSERT_TRUE(
      globex->ListSessions(harness::ContextWithDeadline().get(), v1::ListSessionsRequest(), &other)
          .ok());
  EXPECT_EQ(other.sessions_size(), 0);
}

TEST_F(IntermediateSessionsTest, RefusalsCarryTheirCodeAndAreCounted) {
  AttachConnector();
  WatchAsConnector();
  WatchAsRelay();

  // Another tenant's agent naming acme's service.
  grpc::Status cross = Open("echo.acme", nullptr, "intruder", "globex");
  EXPECT_EQ(cross.error_code(), grpc::StatusCode::PERMISSION_DENIED) << cross.error_message();
  EXPECT_THAT(cross.error_message(), HasSubstr("belongs to tenant \"acme\""));
  EXPECT_THAT(cross.error_message(), HasSubstr("cross-tenant grants are not supported"));
  // The same agent naming the service as its own tenant's finds nothing.
  grpc::Status own = Open("echo", nullptr, "intruder", "globex");
  EXPECT_EQ(own.error_code(), grpc::StatusCode::NOT_FOUND) << own.error_message();

  grpc::Status unknown = Open("no-such-service");
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND) << unknown.error_message();
  EXPECT_THAT(unknown.error_message(), HasSubstr("\"no-such-service\""));

  grpc::Status connector = Open(kService, nullptr, kConnectorName, kTenant, "connector");
  EXPECT_EQ(connector.error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << connector.error_message();
  EXPECT_THAT(connector.error_message(), HasSubstr("agent"));

  grpc::Status malformed = Open("Echo");
  EXPECT_EQ(malformed.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << malformed.error_message();

  // The agent's own service with the tenant spelled out is fine.
  v1::OpenSessionResponse qualified;
  grpc::Status ok = Open("echo.acme", &qualified);
  EXPECT_TRUE(ok.ok()) << ok.error_message();

  const std::string metrics = Metrics();
  EXPECT_EQ(harness::MetricValueOr0(metrics, "ferry_sessions_refused_total",
                                    {{"reason", "permission_denied"}}),
            2);
  EXPECT_EQ(
      harness::MetricValueOr0(metrics, "ferry_sessions_refused_total", {{"reason", "not_found"}}),
      2);
  EXPECT_EQ(
      harness::MetricValueOr0(metrics, "ferry_auth_failures_total", {{"reason", "other_tenant"}}),
      1);
  EXPECT_EQ(harness::MetricValue(metrics, "ferry_sessions_opened_total"), 1);
  EXPECT_EQ(ListSessions().sessions_size(), 1);
}

TEST_F(IntermediateSessionsTest, UnavailableWithoutRelayOrConnectorDataPlane) {
  AttachConnector();
  // The connector has no WatchRoutes stream announcing an address yet.
  RouteWatcher& relay = WatchAsRelay();
  grpc::Status no_connector = Open(kService);
  EXPECT_EQ(no_connector.error_code(), grpc::StatusCode::UNAVAILABLE)
      << no_connector.error_message();
  EXPECT_THAT(no_connector.error_message(), HasSubstr("connector \"edge-1\""));

  // With the connector's data plane up but the only relay gone.
  WatchAsConnector();
  relay.Cancel();
  ASSERT_TRUE(relay.WaitFinished(absl::Seconds(10)).ok());
  // The Intermediate forgets the relay's addresses when it sees the stream end.
  grpc::Status no_relay;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  do {
    no_relay = Open(kService);
    if (no_relay.error_code() == grpc::StatusCode::UNAVAILABLE) break;
    absl::SleepFor(absl::Milliseconds(50));
  } while (absl::Now() < deadline);
  EXPECT_EQ(no_relay.error_code(), grpc::StatusCode::UNAVAILABLE) << no_relay.error_message();
  EXPECT_THAT(no_relay.error_message(), HasSubstr("no relay"));
  EXPECT_GE(harness::MetricValueOr0(Metrics(), "ferry_sessions_refused_total",
                                    {{"reason", "unavailable"}}),
            2);
}

TEST_F(IntermediateSessionsTest, RelayWithoutUdpAddressIsNeverGivenSessions) {
  AttachConnector();
  WatchAsConnector();
  Watch("relay", "relay-1", "", kRelayStream);
  grpc::Status status = Open(kService);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
}

TEST_F(IntermediateSessionsTest, BadAnnouncedAddressEndsTheStreamNamingTheField) {
  watchers_.push_back(std::make_unique<RouteWatcher>(ChannelAs("relay", "relay-1"), "relay-1"));
  RouteWatcher& watcher = *watchers_.back();
  watcher.SetDataAddresses("127.0.0.1:16001", "127.0.0.1:0");
  ASSERT_TRUE(watcher.Start().ok());
  absl::StatusOr<grpc::Status> finished = watcher.WaitFinished(absl::Seconds(10));
  ASSERT_TRUE(finished.ok()) << finished.status();
  EXPECT_EQ(finished->error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(finished->error_message(), HasSubstr("stream_address \"127.0.0.1:0\""));
  EXPECT_TRUE(watcher.received().empty());
}

TEST_F(IntermediateSessionsTest, RelayThatComesBackGetsItsSessionsAgain) {
  AttachConnector();
  WatchAsConnector();
  RouteWatcher& first = WatchAsRelay();
  const uint64_t session_id = MustOpen().agent_hop().session_id();
  ASSERT_TRUE(first
                  .WaitFor([&](const v1::RouteSnapshot& s) {
                    return FindSession(s, session_id) != nullptr;
                  })
                  .ok());
  first.Cancel();
  ASSERT_TRUE(first.WaitFinished(absl::Seconds(10)).ok());

  RouteWatcher& again = WatchAsRelay();
  ASSERT_FALSE(again.received().empty());
  EXPECT_NE(FindSession(again.received().front().snapshot, session_id), nullptr)
      << again.received().front().snapshot.ShortDebugString();
}

// --- Flags ------------------------------------------------------------------------------------

TEST_F(IntermediateSessionsTest, AgentCapIsResourceExhaustedNamingTheFlag) {
  Start({"--max_sessions_per_agent=2"});
  AttachConnector();
  WatchAsConnector();
  WatchAsRelay();
  MustOpen();
  MustOpen();
  grpc::Status third = Open(kService);
  EXPECT_EQ(third.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << third.error_message();
  EXPECT_THAT(third.error_message(), HasSubstr("--max_sessions_per_agent"));
  // Another agent has its own allowance.
  EXPECT_TRUE(Open(kService, nullptr, "desktop").ok());
  EXPECT_EQ(harness::MetricValueOr0(Metrics(), "ferry_sessions_refused_total",
                                    {{"reason", "resource_exhausted"}}),
            1);
}

TEST_F(IntermediateSessionsTest, ExpiredSessionLeavesTheRelaysRoutes) {
  Start({"--session_ttl=1s"});
  AttachConnector();
  WatchAsConnector();
  RouteWatcher& relay = WatchAsRelay();
  const uint64_t session_id = MustOpen().agent_hop().session_id();
  ASSERT_TRUE(relay
                  .WaitFor([&](const v1::RouteSnapshot& s) {
                    return FindSession(s, session_id) != nullptr;
                  })
                  .ok());
  absl::StatusOr<RouteWatcher::Received> gone = relay.WaitFor(
      [&](const v1::RouteSnapshot& s) { return FindSession(s, session_id) == nullptr; });
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_EQ(ListSessions().sessions_size(), 0);
  EXPECT_EQ(harness::MetricValue(Metrics(), "ferry_sessions_open"), 0);
}

TEST_F(IntermediateSessionsTest, BadSessionFlagsRefuseToStart) {
  for (const char* flag : {"--session_ttl=0s", "--max_sessions_per_agent=0"}) {
    harness::IntermediateOptions options;
    options.extra_flags = {flag};
    std::string state_dir;
    absl::StatusOr<std::unique_ptr<harness::FerryProcess>> process =
        IntermediateProcess::Prepare(*pki_, options, &state_dir);
    ASSERT_TRUE(process.ok()) << process.status();
    ASSERT_TRUE((*process)->Start().ok()) << flag;
    absl::StatusOr<harness::ExitStatus> exit = (*process)->WaitExit(absl::Seconds(20));
    ASSERT_TRUE(exit.ok()) << flag << ": " << exit.status();
    EXPECT_TRUE(exit->exited) << exit->ToString();
    EXPECT_EQ(exit->code, 2) << flag;
    EXPECT_THAT((*process)->Logs(),
                HasSubstr(std::string(flag).substr(0, std::string(flag).find('='))))
        << flag;
  }
}

// --- The data plane's own RouteWatcher ------------------------------------------------------

TEST_F(IntermediateSessionsTest, DataPlaneRouteWatcherAnnouncesItsAddresses) {
  AttachConnector();
  WatchAsConnector();
  absl::StatusOr<TlsFiles> files = pki_->Issue("ops", "relay", "relay-dp");
  ASSERT_TRUE(files.ok()) << files.status();
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      harness::MtlsChannel(intermediate_->grpc_address(), *files);
  ASSERT_TRUE(channel.ok()) << channel.status();
  harness::StreamRecord<v1::RouteSnapshot> applied;
  ferry::RouteWatcher watcher(*channel, "relay-dp", [&applied](const v1::RouteSnapshot& s) {
    applied.Add(s);
    return absl::OkStatus();
  });
  watcher.SetDataAddresses("127.0.0.1:16101", "127.0.0.1:16102");
  watcher.Start();
  // The first snapshot comes after the subscription's addresses are recorded.
  ASSERT_TRUE(
      applied.WaitFor([](const v1::RouteSnapshot&) { return true; }, absl::Seconds(10), "relay-dp")
          .ok());

  const v1::OpenSessionResponse opened = MustOpen();
  EXPECT_EQ(opened.relay_address(), "127.0.0.1:16101");
  EXPECT_EQ(opened.relay_stream_address(), "127.0.0.1:16102");
  absl::StatusOr<v1::RouteSnapshot> with_session = applied.WaitFor(
      [&](const v1::RouteSnapshot& s) {
        return FindSession(s, opened.agent_hop().session_id()) != nullptr;
      },
      absl::Seconds(10), "relay-dp");
  ASSERT_TRUE(with_session.ok()) << with_session.status();
  watcher.Stop();
}

}  // namespace
}  // namespace ferry
