// The data plane end to end (issue 4, "Done when"): the real Intermediate,
// relay, connectors and agents as processes with real certificates, test
// backends behind the connectors (tests/backends), and traffic from this test
// into the agents' local listeners, so every byte goes
// client -> agent -> relay -> connector -> backend and back.
//
// One TEST per item of the list: UDP echo; HTTP; 64 MiB up and down with
// matching SHA-256; 1,000 concurrent UDP flows; 100 concurrent TCP
// connections; two tenants interleaving traffic with zero cross-delivery;
// forged, replayed and other-tenant frames dropped and counted by the relay;
// a route change applied while traffic runs. Two more show the agent
// recovering from a relay and an Intermediate restart.
//
// Each test starts its own fabric (tests/harness/fabric.h). Every wait is
// bounded; UDP losses are retried a bounded number of times and tolerated up
// to 1% where the test says so, never silently.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "dataplane/aead.h"
#include "dataplane/frame.h"
#include "dataplane/testing/frame_builder.h"
#include "ferry/v1/admin.grpc.pb.h"
#include "ferry/v1/sessions.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/backends/backend_process.h"
#include "tests/backends/pattern.h"
#include "tests/backends/tcp_client.h"
#include "tests/backends/udp_flows.h"
#include "tests/harness/channels.h"
#include "tests/harness/dev_pki_fixture.h"
#include "tests/harness/fabric.h"
#include "tests/harness/fabric_test_base.h"
#include "tests/harness/metrics_scrape.h"

namespace ferry {
namespace {

using backends::BackendOptions;
using backends::BackendProcess;
using backends::TcpExchange;
using backends::TcpExchangeOptions;
using backends::TcpReply;
using backends::TcpUpload;
using backends::UdpExchangeOptions;
using backends::UdpFlowSet;
using backends::UdpFlowSpec;
using backends::UdpFlowStats;
using dataplane::AeadAlgorithm;
using dataplane::Direction;
using dataplane::HopAead;
using dataplane::HopRole;
using dataplane::MakeCounter;
using dataplane::test::FrameBuilder;
using harness::AgentSpec;
using harness::ConnectorSpec;
using harness::Datagrams;
using harness::Describe;
using harness::Fabric;
using harness::FabricOptions;
using harness::FabricService;
using harness::Scrape;
using harness::Service;
using harness::SumSamples;
using harness::UdpEcho;

constexpr char kAcme[] = "acme";
constexpr char kGlobex[] = "globex";
constexpr uint64_t kMiB = uint64_t{1} << 20;

class DataplaneE2eTest : public harness::FabricTest {
 protected:
  // Tenants acme and globex, each with a UDP echo backend whose replies start
  // with "<tenant>:", a connector edge-<tenant> serving it as echo-udp (the
  // same name in both tenants) and, when `with_agents`, an agent
  // laptop-<tenant> exposing it.
  void StartTwoTenantFabric(bool with_agents) {
    FabricOptions options;
    for (const char* tenant : {kAcme, kGlobex}) {
      BackendProcess* echo =
          StartBackend(UdpEcho(absl::StrCat("echo-", tenant), absl::StrCat(tenant, ":")));
      ASSERT_NE(echo, nullptr);
      options.connectors.push_back(
          ConnectorSpec{tenant,
                        absl::StrCat("edge-", tenant),
                        {Service("echo-udp", v1::PROTOCOL_UDP, {echo->udp_echo()})}});
      if (with_agents) {
        options.agents.push_back(AgentSpec{tenant, absl::StrCat("laptop-", tenant), {"echo-udp"}});
      }
    }
    StartFabric(std::move(options));
  }
};

TEST_F(DataplaneE2eTest, UdpEchoThroughAgentRelayConnectorBackend) {
  BackendProcess* backend = StartBackend(UdpEcho("echo"));
  ASSERT_NE(backend, nullptr);
  ASSERT_NO_FATAL_FAILURE(StartSimpleFabric(
      {Service("echo-udp", v1::PROTOCOL_UDP, {backend->udp_echo()})}, {"echo-udp"}));
  const std::string listener = fabric_->agent("laptop").exposure("echo-udp");

  absl::StatusOr<std::unique_ptr<UdpFlowSet>> flows = UdpFlowSet::Open({UdpFlowSpec{listener}});
  ASSERT_TRUE(flows.ok()) << flows.status();
  UdpExchangeOptions options = Datagrams(20);
  options.padding = 1000;
  ASSERT_TRUE((*flows)->Exchange(options).ok());
  const UdpFlowStats stats = (*flows)->Total();
  EXPECT_EQ(stats.answered, 20u) << Describe(stats);
  EXPECT_EQ(stats.foreign, 0u) << Describe(stats);

  // The datagrams crossed the relay and the connector (no direct path here).
  const std::string relay = Scrape(fabric_->relay().admin_address());
  EXPECT_GE(SumSamples(relay, "ferry_relay_frames_total", {{"direction", "in"}}), 40)
      << "20 datagrams from the agent and 20 echoes from the connector";
  const std::string connector = Scrape(fabric_->connector("edge-1").admin_address());
  EXPECT_GE(SumSamples(connector, "ferry_connector_frames_total", {{"direction", "in"}}), 20);
}

TEST_F(DataplaneE2eTest, HttpGetThroughTheTunnel) {
  BackendOptions web;
  web.name = "web-1";
  web.http = true;
  BackendProcess* backend = StartBackend(web);
  ASSERT_NE(backend, nullptr);
  ASSERT_NO_FATAL_FAILURE(
      StartSimpleFabric({Service("web-http", v1::PROTOCOL_TCP, {backend->http()})}, {"web-http"}));
  const std::string listener = fabric_->agent("laptop").exposure("web-http");

  absl::StatusOr<harness::HttpGetResult> root = harness::HttpGet(listener, "/", absl::Seconds(30));
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_EQ(root->status, 200);
  EXPECT_EQ(root->body, "hello from web-1\n");

  // A response larger than any buffer on the way.
  TcpExchangeOptions options;
  options.timeout = absl::Seconds(30);
  options.keep_bytes = 4 * kMiB;
  absl::StatusOr<TcpReply> bytes = TcpExchange(
      listener, TcpUpload::Of("GET /bytes/3000000 HTTP/1.1\r\nHost: web-http\r\n\r\n"), options);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  absl::StatusOr<backends::HttpResponse> response = backends::ParseHttpResponse(bytes->head);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body.size(), 3000000u);
  EXPECT_TRUE(response->body == backends::PatternBytes(0, 3000000))
      << "the body differs from the backend's pattern";
}

TEST_F(DataplaneE2eTest, SixtyFourMiBUploadAndDownloadKeepTheirSha256) {
  constexpr uint64_t kBytes = 64 * kMiB;
  BackendOptions bulk;
  bulk.name = "bulk";
  bulk.tcp_sha256 = true;
  bulk.tcp_source = true;
  BackendProcess* backend = StartBackend(bulk);
  ASSERT_NE(backend, nullptr);
  ASSERT_NO_FATAL_FAILURE(
      StartSimpleFabric({Service("bulk-sink", v1::PROTOCOL_TCP, {backend->tcp_sha256()}),
                         Service("bulk-source", v1::PROTOCOL_TCP, {backend->tcp_source()})},
                        {"bulk-sink", "bulk-source"}));
  const std::string expected = backends::PatternSha256Hex(kBytes);
  TcpExchangeOptions options;
  options.timeout = absl::Seconds(180);

  // Upload: the backend hashes what reached it.
  absl::StatusOr<TcpReply> upload = TcpExchange(fabric_->agent("laptop").exposure("bulk-sink"),
                                                TcpUpload::Pattern(kBytes), options);
  ASSERT_TRUE(upload.ok()) << upload.status();
  EXPECT_EQ(upload->head, expected) << "SHA-256 at the backend of the 64 MiB upload";

  // Download: this side hashes what reached it.
  absl::StatusOr<TcpReply> download =
      TcpExchange(fabric_->agent("laptop").exposure("bulk-source"),
                  TcpUpload::Of(absl::StrCat(kBytes, "\n")), options);
  ASSERT_TRUE(download.ok()) << download.status();
  EXPECT_EQ(download->size, kBytes);
  EXPECT_EQ(download->sha256_hex, expected) << "SHA-256 of the 64 MiB download";
}

TEST_F(DataplaneE2eTest, ThousandConcurrentUdpFlowsEachGetOnlyTheirOwnEchoes) {
  constexpr size_t kFlows = 1000;
  constexpr int kPerFlow = 5;
  BackendProcess* backend = StartBackend(UdpEcho("echo"));
  ASSERT_NE(backend, nullptr);
  ASSERT_NO_FATAL_FAILURE(StartSimpleFabric(
      {Service("echo-udp", v1::PROTOCOL_UDP, {backend->udp_echo()})}, {"echo-udp"}));
  const std::string listener = fabric_->agent("laptop").exposure("echo-udp");

  absl::StatusOr<std::unique_ptr<UdpFlowSet>> flows =
      UdpFlowSet::Open(std::vector<UdpFlowSpec>(kFlows, UdpFlowSpec{listener}));
  ASSERT_TRUE(flows.ok()) << flows.status();
  UdpExchangeOptions options = Datagrams(kPerFlow);
  options.max_in_flight = 256;
  const absl::Status exchanged = (*flows)->Exchange(options);
  const UdpFlowStats total = (*flows)->Total();
  ASSERT_TRUE(exchanged.ok()) << exchanged << "\n" << Describe(total);

  EXPECT_EQ(total.sent, kFlows * kPerFlow);
  EXPECT_EQ(total.foreign, 0u) << "replies delivered to the wrong flow: " << Describe(total);
  EXPECT_GE(total.answered, total.sent * 99 / 100) << Describe(total);
  size_t silent_flows = 0;
  for (size_t i = 0; i < kFlows; ++i) silent_flows += (*flows)->flow(i).answered == 0;
  EXPECT_LE(silent_flows, kFlows / 100) << "flows that never got an echo";
}

TEST_F(DataplaneE2eTest, HundredConcurrentTcpConnectionsKeepTheirBytes) {
  constexpr int kConnections = 100;
  constexpr uint64_t kBytes = 256 * 1024;
  BackendOptions echo;
  echo.name = "echo";
  echo.tcp_echo = true;
  BackendProcess* backend = StartBackend(echo);
  ASSERT_NE(backend, nullptr);
  ASSERT_NO_FATAL_FAILURE(StartSimpleFabric(
      {Service("echo-tcp", v1::PROTOCOL_TCP, {backend->tcp_echo()})}, {"echo-tcp"}));
  const std::string listener = fabric_->agent("laptop").exposure("echo-tcp");

  std::vector<absl::Status> results(kConnections);
  std::vector<std::thread> threads;
  for (int i = 0; i < kConnections; ++i) {
    threads.emplace_back([&results, &listener, i] {
      // Each connection sends a different slice of the pattern, so bytes
      // crossing into another connection would change its digest.
      const uint64_t offset = static_cast<uint64_t>(i) * 104729;
      TcpExchangeOptions options;
      options.timeout = absl::Seconds(90);
      absl::StatusOr<TcpReply> reply =
          TcpExchange(listener, TcpUpload::Pattern(kBytes, offset), options);
      if (!reply.ok()) {
        results[i] = reply.status();
      } else if (reply->size != kBytes) {
        results[i] = absl::DataLossError(
            absl::StrCat("the echo ended (EOF) after ", reply->size, " of ", kBytes, " bytes"));
      } else if (reply->sha256_hex != backends::Sha256Hex(backends::PatternBytes(offset, kBytes))) {
        results[i] = absl::DataLossError("the echo's SHA-256 differs from what was sent");
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  int failed = 0;
  for (int i = 0; i < kConnections; ++i) {
    if (!results[i].ok()) {
      ++failed;
      ADD_FAILURE() << "connection " << i << ": " << results[i];
    }
  }
  EXPECT_EQ(failed, 0);
}

TEST_F(DataplaneE2eTest, TwoTenantsInterleaveWithZeroCrossDelivery) {
  // Both tenants call their service echo-udp, so their agents' flows and
  // sessions look alike everywhere but in the keys; each backend signs its
  // replies with its tenant name.
  ASSERT_NO_FATAL_FAILURE(StartTwoTenantFabric(/*with_agents=*/true));

  // Flows alternate between the tenants, so their datagrams interleave at
  // the relay and the connectors.
  constexpr size_t kFlowsPerTenant = 50;
  std::vector<UdpFlowSpec> specs;
  for (size_t i = 0; i < kFlowsPerTenant; ++i) {
    specs.push_back({fabric_->agent("laptop-acme").exposure("echo-udp"), {"acme:"}});
    specs.push_back({fabric_->agent("laptop-globex").exposure("echo-udp"), {"globex:"}});
  }
  absl::StatusOr<std::unique_ptr<UdpFlowSet>> flows = UdpFlowSet::Open(std::move(specs));
  ASSERT_TRUE(flows.ok()) << flows.status();
  ASSERT_TRUE((*flows)->Exchange(Datagrams(10)).ok());

  UdpFlowStats by_tenant[2];
  for (size_t i = 0; i < (*flows)->size(); ++i) by_tenant[i % 2].Add((*flows)->flow(i));
  for (int t = 0; t < 2; ++t) {
    SCOPED_TRACE(t == 0 ? "acme" : "globex");
    EXPECT_EQ(by_tenant[t].foreign, 0u)
        << "replies of the other tenant (or flow) reached this tenant: " << Describe(by_tenant[t]);
    EXPECT_GE(by_tenant[t].answered, by_tenant[t].sent * 99 / 100) << Describe(by_tenant[t]);
  }
}

// An agent's session opened by hand, for frames built by hand.
struct HandSession {
  v1::OpenSessionResponse response;
  std::optional<HopAead> aead;  // the agent's end of the agent<->relay hop
};

class ForgedFramesTest : public DataplaneE2eTest {
 protected:
  // OpenSession as agent tenant/name for `service`, retried while the
  // Intermediate answers UNAVAILABLE (routes still settling).
  HandSession OpenSession(const std::string& tenant, const std::string& name,
                          const std::string& service) {
    HandSession session;
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        fabric_->Channel(tenant, "agent", name);
    EXPECT_TRUE(channel.ok()) << channel.status();
    if (!channel.ok()) return session;
    std::unique_ptr<v1::Sessions::Stub> sessions = v1::Sessions::NewStub(*channel);
    v1::OpenSessionRequest request;
    request.set_service(service);
    grpc::Status status;
    const absl::Time deadline = absl::Now() + absl::Seconds(15);
    do {
      session.response.Clear();
      status =
          sessions->OpenSession(harness::ContextWithDeadline().get(), request, &session.response);
      if (status.error_code() != grpc::StatusCode::UNAVAILABLE) break;
      absl::SleepFor(absl::Milliseconds(100));
    } while (absl::Now() < deadline);
    EXPECT_TRUE(status.ok()) << "OpenSession(" << service << ") as " << tenant << "/" << name
                             << ": " << status.error_message();
    if (!status.ok()) return session;
    const std::string& key = session.response.agent_hop().key();
    absl::StatusOr<HopAead> aead = HopAead::Create(
        AeadAlgorithm::kAes256Gcm,
        absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(key.data()), key.size()),
        HopRole::kInitiator);
    EXPECT_TRUE(aead.ok()) << aead.status();
    if (aead.ok()) session.aead.emplace(*std::move(aead));
    return session;
  }

  // The service id `tenant`/`name` got, from the admin API.
  uint32_t ServiceId(const std::string& tenant, const std::string& name) {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        fabric_->Channel(harness::kFabricOperatorTenant, "admin", "e2e");
    EXPECT_TRUE(channel.ok()) << channel.status();
    if (!channel.ok()) return 0;
    v1::ListServicesRequest request;
    request.set_tenant(tenant);
    v1::ListServicesResponse response;
    grpc::Status status = v1::Admin::NewStub(*channel)->ListServices(
        harness::ContextWithDeadline().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    for (const v1::Service& service : response.services()) {
      if (service.spec().name() == name) return service.id();
    }
    ADD_FAILURE() << "no service " << tenant << "/" << name;
    return 0;
  }

  // A UDP socket connected to `address`.
  int ConnectedUdpSocket(const std::string& address) {
    std::vector<std::string> parts = absl::StrSplit(address, ':');
    int port = 0;
    EXPECT_TRUE(parts.size() == 2 && absl::SimpleAtoi(parts[1], &port)) << address;
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(static_cast<uint16_t>(port));
    EXPECT_EQ(inet_pton(AF_INET, parts[0].c_str(), &sin.sin_addr), 1) << address;
    const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
    return fd;
  }

  // The next datagram on `fd` within `timeout`, or nullopt.
  static std::optional<std::vector<uint8_t>> Receive(int fd, absl::Duration timeout) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) <= 0) {
      return std::nullopt;
    }
    std::vector<uint8_t> buffer(dataplane::kMaxFrameSize);
    const ssize_t n = recv(fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
    if (n < 0) return std::nullopt;
    buffer.resize(static_cast<size_t>(n));
    return buffer;
  }

  static void Send(int fd, const std::vector<uint8_t>& frame) {
    ASSERT_EQ(send(fd, frame.data(), frame.size(), 0), static_cast<ssize_t>(frame.size()));
  }

  double RelayDrops(const std::string& reason) {
    return harness::MetricValueOr0(Scrape(fabric_->relay().admin_address()),
                                   "ferry_relay_drops_total", {{"reason", reason}});
  }

  void TearDown() override {
    if (fd_ >= 0) close(fd_);
    DataplaneE2eTest::TearDown();
  }

  int fd_ = -1;
};

TEST_F(ForgedFramesTest, ForgedReplayedAndOtherTenantFramesAreDroppedAndCounted) {
  ASSERT_NO_FATAL_FAILURE(StartTwoTenantFabric(/*with_agents=*/false));
  HandSession session = OpenSession(kAcme, "mallory", "echo-udp");
  ASSERT_TRUE(session.aead.has_value());
  const uint64_t session_id = session.response.agent_hop().session_id();
  const uint32_t service_id = session.response.service_id();
  const uint32_t other_tenants_service = ServiceId(kGlobex, "echo-udp");
  ASSERT_NE(other_tenants_service, 0u);
  ASSERT_NE(other_tenants_service, service_id);
  EXPECT_EQ(session.response.relay_address(), fabric_->relay().udp_address());
  fd_ = ConnectedUdpSocket(fabric_->relay().udp_address());

  constexpr uint32_t kFlow = 7;
  auto frame = [&](uint64_t sequence) {
    return FrameBuilder()
        .SessionId(session_id)
        .ServiceId(service_id)
        .FlowId(kFlow)
        .Counter(MakeCounter(Direction::kInitiatorToResponder, sequence));
  };

  // 1. A valid frame gets its echo. The relay learns the session's key from
  // a route push after OpenSession, so early attempts may meet an unknown
  // session: each attempt is a new frame (new counter, own payload), and the
  // frame whose echo came back is the one replayed below.
  std::optional<std::vector<uint8_t>> answered_frame;
  for (uint64_t attempt = 1; attempt <= 30 && !answered_frame; ++attempt) {
    const std::string payload = absl::StrCat("ping-", attempt);
    std::vector<uint8_t> sent =
        frame(attempt).Flags(dataplane::kFlagOpen).Payload(payload).BuildSealed(*session.aead);
    ASSERT_NO_FATAL_FAILURE(Send(fd_, sent));
    const absl::Time until = absl::Now() + absl::Milliseconds(500);
    while (!answered_frame && absl::Now() < until) {
      std::optional<std::vector<uint8_t>> reply = Receive(fd_, until - absl::Now());
      if (!reply) break;
      dataplane::FrameResult<dataplane::FrameView> view = dataplane::DecodeFrame(*reply);
      ASSERT_TRUE(view.ok()) << "the relay answered with a malformed frame: "
                             << dataplane::FrameErrorName(view.error());
      EXPECT_EQ(view->header.session_id, session_id);
      EXPECT_EQ(view->header.flow_id, kFlow);
      ASSERT_EQ(session.aead->Open(absl::MakeSpan(*reply)), dataplane::AeadStatus::kOk)
          << "the relay's answer does not authenticate under the session's key";
      const std::string echoed(reply->begin() + dataplane::kHeaderSize,
                               reply->end() - dataplane::kTagSize);
      // An echo of an earlier attempt is as good: that frame was accepted.
      // acme's backend signs its echoes "acme:".
      absl::string_view rest = echoed;
      uint64_t echoed_attempt = 0;
      ASSERT_TRUE(absl::ConsumePrefix(&rest, "acme:ping-") &&
                  absl::SimpleAtoi(rest, &echoed_attempt) && echoed_attempt >= 1 &&
                  echoed_attempt <= attempt)
          << "unexpected payload \"" << echoed << "\"";
      answered_frame = frame(echoed_attempt)
                           .Flags(dataplane::kFlagOpen)
                           .Payload(absl::StrCat("ping-", echoed_attempt))
                           .BuildSealed(*session.aead);
    }
  }
  ASSERT_TRUE(answered_frame.has_value()) << "no valid frame was ever answered through the relay";
  // Late echoes of other attempts are not what the cases below look for.
  while (Receive(fd_, absl::Milliseconds(300))) {
  }

  // 2. Each bad frame is dropped with its reason counted.
  std::array<uint8_t, dataplane::kAeadKeySize> wrong_key;
  std::mt19937_64 random(std::random_device{}());
  for (uint8_t& b : wrong_key) b = static_cast<uint8_t>(random());
  absl::StatusOr<HopAead> wrong =
      HopAead::Create(AeadAlgorithm::kAes256Gcm, wrong_key, HopRole::kInitiator);
  ASSERT_TRUE(wrong.ok()) << wrong.status();
  struct Case {
    std::string what;
    std::vector<uint8_t> frame;
    std::string reason;
  };
  const Case cases[] = {
      {"the answered frame again", *answered_frame, "replayed"},
      {"sealed with another key", frame(1000).Payload("forged").BuildSealed(*wrong), "bad_tag"},
      {"an unknown session id",
       frame(1001)
           .SessionId(session_id ^ 0x5a5a5a5a5a5a5a5aull)
           .Payload("who")
           .BuildSealed(*session.aead),
       "unknown_session"},
      {"another tenant's service id",
       frame(1)
           .FlowId(kFlow + 1)
           .ServiceId(other_tenants_service)
           .Flags(dataplane::kFlagOpen)
           .Payload("other tenant")
           .BuildSealed(*session.aead),
       "service_not_allowed"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    const double before = RelayDrops(c.reason);
    ASSERT_NO_FATAL_FAILURE(Send(fd_, c.frame));
    absl::StatusOr<double> after =
        harness::WaitForMetricAtLeast(fabric_->relay().admin_address(), "ferry_relay_drops_total",
                                      {{"reason", c.reason}}, before + 1, absl::Seconds(10));
    EXPECT_TRUE(after.ok()) << "ferry_relay_drops_total{reason=\"" << c.reason
                            << "\"} did not go up: " << after.status();
  }
  // None of them was forwarded: no echo came back for any.
  std::optional<std::vector<uint8_t>> stray = Receive(fd_, absl::Milliseconds(500));
  EXPECT_FALSE(stray.has_value()) << "a dropped frame was answered (" << stray->size() << " bytes)";
}

TEST_F(DataplaneE2eTest, RouteChangeAppliesWhileTrafficRuns) {
  BackendProcess* b1 = StartBackend(UdpEcho("b1", "b1:"));
  BackendProcess* b2 = StartBackend(UdpEcho("b2", "b2:"));
  ASSERT_NE(b1, nullptr);
  ASSERT_NE(b2, nullptr);
  constexpr uint32_t kPort = 7007;  // Fixed, so only the backend set changes.
  ASSERT_NO_FATAL_FAILURE(StartSimpleFabric(
      {Service("echo-udp", v1::PROTOCOL_UDP, {b1->udp_echo(), b2->udp_echo()}, kPort)},
      {"echo-udp"}));
  const std::string listener = fabric_->agent("laptop").exposure("echo-udp");
  const std::vector<std::string> either = {"b1:", "b2:"};

  // 32 flows spread over both backends by the connector's hashing.
  constexpr size_t kFlows = 32;
  absl::StatusOr<std::unique_ptr<UdpFlowSet>> old_flows =
      UdpFlowSet::Open(std::vector<UdpFlowSpec>(kFlows, UdpFlowSpec{listener, either}));
  ASSERT_TRUE(old_flows.ok()) << old_flows.status();
  ASSERT_TRUE((*old_flows)->Exchange(Datagrams(3)).ok());
  std::vector<UdpFlowStats> at_change;
  std::set<size_t> on_b1;
  size_t on_b2 = 0;
  for (size_t i = 0; i < kFlows; ++i) {
    const UdpFlowStats& stats = (*old_flows)->flow(i);
    at_change.push_back(stats);
    ASSERT_EQ(stats.foreign, 0u) << "flow " << i << ": " << Describe(stats);
    ASSERT_GT(stats.answered, 0u) << "flow " << i << " got no echo: " << Describe(stats);
    ASSERT_EQ(stats.answered_by_prefix.size(), 1u)
        << "flow " << i << " did not stick to one backend: " << Describe(stats);
    if (stats.answered_by_prefix.count("b1:") != 0) {
      on_b1.insert(i);
    } else {
      ++on_b2;
    }
  }
  ASSERT_FALSE(on_b1.empty()) << "every flow went to b2; the change could not be observed";
  ASSERT_GT(on_b2, 0u) << "every flow went to b1; the change could not be observed";

  // Drop b2 while the old flows keep sending.
  const std::string connector_admin = fabric_->connector("edge-1").admin_address();
  const double version_before =
      harness::MetricValueOr0(Scrape(connector_admin), "ferry_connector_route_version");
  ASSERT_TRUE(fabric_
                  ->UpdateConnectorServices(
                      "edge-1", {Service("echo-udp", v1::PROTOCOL_UDP, {b1->udp_echo()}, kPort)})
                  .ok());
  UdpExchangeOptions one_round = Datagrams(1);
  one_round.max_attempts = 2;
  one_round.retry_after = absl::Milliseconds(300);
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  bool applied = false;
  while (!applied && absl::Now() < deadline) {
    ASSERT_TRUE((*old_flows)->Exchange(one_round).ok());
    applied = harness::MetricValueOr0(Scrape(connector_admin), "ferry_connector_route_version") >
              version_before;
  }
  ASSERT_TRUE(applied) << "the connector's route version stayed at " << version_before;
  ASSERT_TRUE((*old_flows)->Exchange(Datagrams(3)).ok());

  // Flows on the remaining backend carried on, and only there.
  for (size_t i : on_b1) {
    const UdpFlowStats& now = (*old_flows)->flow(i);
    SCOPED_TRACE(absl::StrCat("flow ", i, " on b1: ", Describe(now)));
    EXPECT_EQ(now.foreign, 0u);
    EXPECT_EQ(now.answered_by_prefix.count("b2:"), 0u);
    EXPECT_GT(now.answered, at_change[i].answered) << "the flow stopped with the route change";
  }
  // New flows go to the remaining backend only.
  absl::StatusOr<std::unique_ptr<UdpFlowSet>> new_flows =
      UdpFlowSet::Open(std::vector<UdpFlowSpec>(16, UdpFlowSpec{listener, either}));
  ASSERT_TRUE(new_flows.ok()) << new_flows.status();
  ASSERT_TRUE((*new_flows)->Exchange(Datagrams(3)).ok());
  const UdpFlowStats fresh = (*new_flows)->Total();
  EXPECT_EQ(fresh.answered_by_prefix.count("b2:"), 0u) << Describe(fresh);
  EXPECT_EQ(fresh.foreign, 0u) << Describe(fresh);
  EXPECT_GE(fresh.answered, fresh.sent * 99 / 100) << Describe(fresh);
}

// Agents re-open their sessions when a relay or the Intermediate restarts
// (the agent requirement; exercises the fabric's restarts).
TEST_F(DataplaneE2eTest, AgentRecoversAfterRelayAndIntermediateRestarts) {
  BackendProcess* backend = StartBackend(UdpEcho("echo"));
  ASSERT_NE(backend, nullptr);
  ASSERT_NO_FATAL_FAILURE(StartSimpleFabric(
      {Service("echo-udp", v1::PROTOCOL_UDP, {backend->udp_echo()})}, {"echo-udp"}));
  const std::string listener = fabric_->agent("laptop").exposure("echo-udp");
  auto echo_works = [&listener](const std::string& when) {
    // A new flow each time; generous retries cover the agent's reconnection.
    absl::StatusOr<std::unique_ptr<UdpFlowSet>> flows = UdpFlowSet::Open({UdpFlowSpec{listener}});
    ASSERT_TRUE(flows.ok()) << flows.status();
    UdpExchangeOptions options = Datagrams(3);
    options.max_attempts = 30;
    options.retry_after = absl::Seconds(1);
    ASSERT_TRUE((*flows)->Exchange(options).ok());
    EXPECT_EQ((*flows)->Total().answered, 3u) << when << ": " << Describe((*flows)->Total());
  };
  ASSERT_NO_FATAL_FAILURE(echo_works("at start"));

  const std::string relay_udp = fabric_->relay().udp_address();
  ASSERT_TRUE(fabric_->RestartRelay().ok());
  EXPECT_EQ(fabric_->relay().udp_address(), relay_udp) << "the relay came back elsewhere";
  ASSERT_TRUE(fabric_->WaitRouted(absl::Seconds(30)).ok());
  ASSERT_NO_FATAL_FAILURE(echo_works("after the relay restarted"));

  const std::string grpc = fabric_->intermediate().grpc_address();
  ASSERT_TRUE(fabric_->RestartIntermediate().ok());
  EXPECT_EQ(fabric_->intermediate().grpc_address(), grpc);
  ASSERT_TRUE(fabric_->WaitRouted(absl::Seconds(30)).ok());
  ASSERT_NO_FATAL_FAILURE(echo_works("after the Intermediate restarted"));
}

}  // namespace
}  // namespace ferry

namespace ferry {
namespace {

// ICMP echo through agent-hop frames -> relay -> connector -> an unprivileged
// ICMP datagram socket to 127.0.0.1, and the reply back on the flow. The
// kernel allows such sockets only to groups in net.ipv4.ping_group_range, so
// this runs for real in //tests:dataplane_icmp_netns_test, which starts this
// binary in a network namespace of its own with the range opened; elsewhere
// it is skipped.
TEST_F(ForgedFramesTest, IcmpEchoRequestsReachTheBackendAndRepliesComeBack) {
  const int probe = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_ICMP);
  if (probe < 0) {
    ASSERT_EQ(getenv("FERRY_REQUIRE_ICMP"), nullptr)
        << "ICMP datagram sockets are not permitted even in the test's own namespace";
    GTEST_SKIP() << "ICMP datagram sockets are not permitted here (net.ipv4.ping_group_range); "
                    "//tests:dataplane_icmp_netns_test runs this in its own network namespace";
  }
  close(probe);
  ASSERT_NO_FATAL_FAILURE(
      StartSimpleFabric({Service("ping-local", v1::PROTOCOL_ICMP, {"127.0.0.1"})}, {}));
  HandSession session = OpenSession(kAcme, "pinger", "ping-local");
  ASSERT_TRUE(session.aead.has_value());
  fd_ = ConnectedUdpSocket(session.response.relay_address());

  constexpr uint32_t kFlow = 9;
  constexpr uint16_t kIdentifier = 0x4242;
  bool answered = false;
  for (uint16_t seq = 1; seq <= 20 && !answered; ++seq) {
    // An echo request: type 8, code 0, checksum (the kernel fills it in),
    // identifier, sequence, data.
    std::vector<uint8_t> icmp = {8,
                                 0,
                                 0,
                                 0,
                                 kIdentifier >> 8,
                                 kIdentifier & 0xff,
                                 static_cast<uint8_t>(seq >> 8),
                                 static_cast<uint8_t>(seq)};
    const std::string data = "ferry-ping";
    icmp.insert(icmp.end(), data.begin(), data.end());
    std::vector<uint8_t> frame = FrameBuilder()
                                     .SessionId(session.response.agent_hop().session_id())
                                     .ServiceId(session.response.service_id())
                                     .FlowId(kFlow)
                                     .Flags(dataplane::kFlagOpen)
                                     .Counter(MakeCounter(Direction::kInitiatorToResponder, seq))
                                     .Payload(absl::MakeConstSpan(icmp))
                                     .BuildSealed(*session.aead);
    ASSERT_NO_FATAL_FAILURE(Send(fd_, frame));
    std::optional<std::vector<uint8_t>> reply = Receive(fd_, absl::Milliseconds(500));
    if (!reply) continue;  // the routes may still be settling
    ASSERT_EQ(session.aead->Open(absl::MakeSpan(*reply)), dataplane::AeadStatus::kOk);
    const std::vector<uint8_t> echo(reply->begin() + dataplane::kHeaderSize,
                                    reply->end() - dataplane::kTagSize);
    ASSERT_EQ(echo.size(), icmp.size());
    EXPECT_EQ(echo[0], 0) << "not an echo reply";
    EXPECT_EQ((echo[4] << 8) | echo[5], kIdentifier) << "the client's identifier was not restored";
    EXPECT_EQ(std::string(echo.begin() + 8, echo.end()), data);
    // The checksum over the whole message, as restored by the connector, is valid.
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < echo.size(); i += 2) sum += (echo[i] << 8) | echo[i + 1];
    if (echo.size() % 2 == 1) sum += echo.back() << 8;
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    EXPECT_EQ(sum, 0xffffu) << "bad ICMP checksum";
    answered = true;
  }
  EXPECT_TRUE(answered) << "no echo reply came back through the fabric";
}

}  // namespace
}  // namespace ferry
