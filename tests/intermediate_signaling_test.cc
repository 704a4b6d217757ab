// Signaling with ownership (issue 5), end to end against the real
// ferry-intermediate with real certificates: a test connector attached over
// Registry.ConnectorSession, route watchers announcing data-plane addresses, and
// agents that open sessions, signal (Sessions.Signal) and watch
// (Sessions.WatchSignals). The tests assert that an Offer reaches the serving
// connector's stream and an Answer the agent's watch, every refusal with its
// status code (connector not serving the session, another agent of the
// tenant, another tenant, an expired session, a detached connector), that a
// refused signal on the connector stream leaves the stream up, and the
// signaling metrics.
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "ferry/v1/registry.grpc.pb.h"
#include "ferry/v1/sessions.grpc.pb.h"
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
using harness::IntermediateProcess;
using harness::RouteWatcher;
using harness::TestConnector;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kTenant[] = "acme";
constexpr char kService[] = "echo";
constexpr char kConnectorName[] = "edge-1";
constexpr absl::Duration kKeepaliveInterval = absl::Seconds(1);

v1::SignalMessage Offer(uint64_t session, const std::string& candidate = "192.0.2.10:5000") {
  v1::SignalMessage m;
  m.set_session_id(session);
  m.mutable_offer()->add_candidates(candidate);
  return m;
}
v1::SignalMessage Answer(uint64_t session, const std::string& candidate = "198.51.100.7:6000") {
  v1::SignalMessage m;
  m.set_session_id(session);
  m.mutable_answer()->add_candidates(candidate);
  return m;
}
v1::SignalMessage Candidate(uint64_t session, const std::string& address) {
  v1::SignalMessage m;
  m.set_session_id(session);
  m.mutable_candidate()->set_address(address);
  return m;
}
v1::ConnectorMessage OnStream(v1::SignalMessage signal) {
  v1::ConnectorMessage m;
  *m.mutable_signal() = std::move(signal);
  return m;
}

// An agent's WatchSignals stream for one session.
class SignalWatch {
 public:
  SignalWatch(std::shared_ptr<grpc::Channel> channel, uint64_t session_id)
      : stub_(v1::Sessions::NewStub(channel)) {
    context_.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    v1::WatchSignalsRequest request;
    request.set_session_id(session_id);
    reader_ = stub_->WatchSignals(&context_, request);
  }
  ~SignalWatch() {
    if (!finished_) {
      context_.TryCancel();
      v1::SignalMessage ignored;
      while (reader_->Read(&ignored)) {
      }
      reader_->Finish().ok();
    }
  }

  // The next message, or the stream's final status when it ended instead.
  absl::StatusOr<v1::SignalMessage> Next() {
    v1::SignalMessage message;
    if (reader_->Read(&message)) return message;
    return Finished();
  }
  // Waits for the stream's end (messages still coming are skipped); the
  // status of the call as an absl::Status.
  absl::Status Finished() {
    finished_ = true;
    v1::SignalMessage ignored;
    while (reader_->Read(&ignored)) {
    }
    grpc::Status status = reader_->Finish();
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  }

 private:
  std::unique_ptr<v1::Sessions::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<v1::SignalMessage>> reader_;
  bool finished_ = false;
};

class IntermediateSignalingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<DevPki*> pki = harness::SharedDevPki();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *pki;
  }

  void TearDown() override {
    watchers_.clear();
    connectors_.clear();
  }

  // Starts the Intermediate with sessions living `session_ttl`, connector
  // kConnectorName serving kService (attached, keeping alive, watching
  // routes with data-plane addresses) and a relay; opens a session for
  // agent "laptop" and returns its id.
  uint64_t StartWithSession(absl::Duration session_ttl = absl::Minutes(10)) {
    harness::IntermediateOptions options;
    options.connector_grace = absl::Seconds(30);
    options.keepalive_interval = kKeepaliveInterval;
    options.extra_flags = {absl::StrCat("--session_ttl=", absl::FormatDuration(session_ttl))};
    absl::StatusOr<std::unique_ptr<IntermediateProcess>> started =
        IntermediateProcess::Start(*pki_, options);
    EXPECT_TRUE(started.ok()) << started.status();
    if (!started.ok()) return 0;
    intermediate_ = *std::move(started);
    connector_ = Attach(kConnectorName, kService);
    Watch("connector", kConnectorName, "127.0.0.1:17001");
    Watch("relay", "relay-1", "127.0.0.1:16001");
    auto stub = v1::Sessions::NewStub(ChannelAs("agent", "laptop"));
    v1::OpenSessionRequest request;
    request.set_service(kService);
    v1::OpenSessionResponse response;
    grpc::Status status =
        stub->OpenSession(harness::ContextWithDeadline().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
    return response.agent_hop().session_id();
  }

  std::shared_ptr<grpc::Channel> ChannelAs(const std::string& role, const std::string& name,
                                           const std::string& tenant = kTenant) {
    return harness::TestChannel(intermediate_->grpc_address(), pki_->Issue(tenant, role, name));
  }

  // Connector `name` of kTenant attached with `service` (UDP), keeping alive.
  TestConnector* Attach(const std::string& name, const std::string& service) {
    auto connector = std::make_unique<TestConnector>(ChannelAs("connector", name));
    v1::Hello hello;
    hello.set_version("test");
    v1::ServiceSpec* spec = hello.add_services();
    *spec = harness::MakeServiceSpec(service, {"127.0.0.1:9000"});
    spec->set_protocol(v1::PROTOCOL_UDP);
    absl::Status opened = connector->Open(hello);
    EXPECT_TRUE(opened.ok()) << opened;
    absl::StatusOr<v1::Welcome> welcome = connector->WaitForWelcome();
    EXPECT_TRUE(welcome.ok()) << welcome.status();
    connector->StartKeepalives(kKeepaliveInterval / 4);
    connectors_.push_back(std::move(connector));
    return connectors_.back().get();
  }

  void Watch(const std::string& role, const std::string& name, const std::string& udp) {
    watchers_.push_back(std::make_unique<RouteWatcher>(ChannelAs(role, name), name));
    RouteWatcher& watcher = *watchers_.back();
    watcher.SetDataAddresses(udp, "");
    absl::Status started = watcher.Start();
    ASSERT_TRUE(started.ok()) << started;
    ASSERT_TRUE(watcher.WaitFor([](const v1::RouteSnapshot&) { return true; }).ok());
  }

  // Sessions.Signal as `role` `name` of `tenant`.
  grpc::Status Signal(const v1::SignalMessage& message, const std::string& role = "agent",
                      const std::string& name = "laptop", const std::string& tenant = kTenant) {
    auto stub = v1::Sessions::NewStub(ChannelAs(role, name, tenant));
    v1::SignalAck ack;
    return stub->Signal(harness::ContextWithDeadline().get(), message, &ack);
  }

  std::string Metrics() {
    absl::StatusOr<std::string> metrics = harness::FetchMetrics(intermediate_->admin_address());
    EXPECT_TRUE(metrics.ok()) << metrics.status();
    return metrics.value_or("");
  }
  double Denials(const std::string& reason) {
    return harness::MetricValueOr0(Metrics(), "ferry_signaling_denials_total",
                                   {{"reason", reason}});
  }

  // Signal commands the session's connector received so far.
  std::vector<v1::SignalMessage> SignalsAtConnector() {
    std::vector<v1::SignalMessage> signals;
    for (const v1::ConnectorCommand& c : connector_->commands()) {
      if (c.has_signal()) signals.push_back(c.signal());
    }
    return signals;
  }

  DevPki* pki_ = nullptr;
  std::unique_ptr<IntermediateProcess> intermediate_;
  std::vector<std::unique_ptr<TestConnector>> connectors_;
  std::vector<std::unique_ptr<RouteWatcher>> watchers_;
  TestConnector* connector_ = nullptr;
};

TEST_F(IntermediateSignalingTest, OfferReachesTheConnectorAndAnswerReachesTheAgentsWatch) {
  const uint64_t session = StartWithSession();
  ASSERT_NE(session, 0u);

  grpc::Status offered = Signal(Offer(session));
  ASSERT_TRUE(offered.ok()) << offered.error_code() << ": " << offered.error_message();
  absl::StatusOr<v1::ConnectorCommand> at_connector = connector_->WaitForCommand(
      [](const v1::ConnectorCommand& c) { return c.has_signal(); }, absl::Seconds(10));
  ASSERT_TRUE(at_connector.ok()) << at_connector.status();
  EXPECT_EQ(at_connector->signal().session_id(), session);
  EXPECT_THAT(at_connector->signal().offer().candidates(), ElementsAre("192.0.2.10:5000"));

  // An Answer sent before the agent watches waits for it; a Candidate sent
  // while it watches follows it, in order.
  ASSERT_TRUE(connector_->Send(OnStream(Answer(session))));
  ASSERT_TRUE(harness::WaitForMetricAtLeast(intermediate_->admin_address(),
                                            "ferry_signaling_messages_total", {{"kind", "answer"}},
                                            1)
                  .ok());
  SignalWatch watch(ChannelAs("agent", "laptop"), session);
  absl::StatusOr<v1::SignalMessage> first = watch.Next();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->session_id(), session);
  EXPECT_THAT(first->answer().candidates(), ElementsAre("198.51.100.7:6000"));
  ASSERT_TRUE(connector_->Send(OnStream(Candidate(session, "198.51.100.7:6001"))));
  absl::StatusOr<v1::SignalMessage> second = watch.Next();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->candidate().address(), "198.51.100.7:6001");

  // The connector may also answer through Sessions.Signal.
  grpc::Status unary = Signal(Candidate(session, "198.51.100.7:6002"), "connector", kConnectorName);
  ASSERT_TRUE(unary.ok()) << unary.error_message();
  absl::StatusOr<v1::SignalMessage> third = watch.Next();
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(third->candidate().address(), "198.51.100.7:6002");

  const std::string metrics = Metrics();
  for (const auto& [kind, count] :
       std::vector<std::pair<std::string, double>>{{"offer", 1}, {"answer", 1}, {"candidate", 2}}) {
    EXPECT_EQ(harness::MetricValueOr0(metrics, "ferry_signaling_messages_total", {{"kind", kind}}),
              count)
        << kind;
  }
  EXPECT_TRUE(
      harness::WaitForMetricAtLeast(intermediate_->admin_address(), "ferry_rpcs_total",
                                    {{"method", "ferry.v1.Sessions/Signal"}, {"code", "OK"}}, 2)
          .ok());
}

TEST_F(IntermediateSignalingTest, EveryRefusalHasItsStatusCodeAndIsCounted) {
  const uint64_t session = StartWithSession();
  ASSERT_NE(session, 0u);
  // Another connector of the tenant, serving another service.
  TestConnector* other_connector = Attach("edge-2", "other");

  struct Case {
    const char* name;
    v1::SignalMessage message;
    std::string role, identity, tenant;
    grpc::StatusCode code;
    const char* reason;
  };
  const std::vector<Case> cases = {
      {"Answer from a connector not serving the session", Answer(session), "connector", "edge-2",
       kTenant, grpc::StatusCode::PERMISSION_DENIED, "not_session_connector"},
      {"Candidate from another agent of the same tenant", Candidate(session, "192.0.2.11:1"),
       "agent", "phone", kTenant, grpc::StatusCode::PERMISSION_DENIED, "not_session_agent"},
      {"Offer for a session of another tenant", Offer(session), "agent", "laptop", "globex",
       grpc::StatusCode::PERMISSION_DENIED, "other_tenant"},
      {"Offer for an unknown session", Offer(session ^ 0x5a5a5a5a5a5a5a5a), "agent", "laptop",
       kTenant, grpc::StatusCode::PERMISSION_DENIED, "unknown_session"},
      {"Answer from the agent", Answer(session), "agent", "laptop", kTenant,
       grpc::StatusCode::PERMISSION_DENIED, "wrong_kind"},
      {"Offer with a bad candidate", Offer(session, "not-an-address"), "agent", "laptop", kTenant,
       grpc::StatusCode::INVALID_ARGUMENT, "malformed"},
  };
  for (const Case& c : cases) {
    const double before = Denials(c.reason);
    grpc::Status status = Signal(c.message, c.role, c.identity, c.tenant);
    EXPECT_EQ(status.error_code(), c.code) << c.name << ": " << status.error_message();
    EXPECT_EQ(Denials(c.reason), before + 1) << c.name;
  }

  // Another tenant's session and an unknown one get the same answer.
  grpc::Status foreign = Signal(Offer(session), "agent", "laptop", "globex");
  grpc::Status unknown = Signal(Offer(session ^ 1), "agent", "laptop", "globex");
  EXPECT_EQ(foreign.error_code(), unknown.error_code());
  EXPECT_THAT(foreign.error_message(), HasSubstr("has no session"));
  EXPECT_THAT(unknown.error_message(), HasSubstr("has no session"));

  // Only the session's agent may watch it.
  SignalWatch stranger(ChannelAs("agent", "phone"), session);
  absl::Status watched = stranger.Finished();
  EXPECT_TRUE(absl::IsPermissionDenied(watched)) << watched;

  // On the connector stream, a refused signal is counted, and the stream stays up.
  const double before = Denials("not_session_connector");
  ASSERT_TRUE(other_connector->Send(OnStream(Answer(session))));
  ASSERT_TRUE(harness::WaitForMetricAtLeast(intermediate_->admin_address(),
                                            "ferry_signaling_denials_total",
                                            {{"reason", "not_session_connector"}}, before + 1)
                  .ok());
  ASSERT_TRUE(other_connector->SendKeepalive());
  EXPECT_TRUE(
      other_connector
          ->WaitForCommand([](const v1::ConnectorCommand& c) { return c.has_keepalive_ack(); },
                           absl::Seconds(10))
          .ok());
  EXPECT_FALSE(other_connector->finished());

  // Nothing refused reached the session's connector, and the agent's watch
  // holds nothing: its first message is the one sent now.
  EXPECT_TRUE(SignalsAtConnector().empty());
  ASSERT_TRUE(connector_->Send(OnStream(Candidate(session, "198.51.100.7:7000"))));
  SignalWatch watch(ChannelAs("agent", "laptop"), session);
  absl::StatusOr<v1::SignalMessage> first = watch.Next();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->candidate().address(), "198.51.100.7:7000");
  EXPECT_EQ(
      harness::MetricValueOr0(Metrics(), "ferry_auth_failures_total", {{"reason", "other_tenant"}}),
      2);
}

TEST_F(IntermediateSignalingTest, ExpiredSessionIsFailedPreconditionAndEndsTheWatch) {
  const uint64_t session = StartWithSession(absl::Seconds(2));
  ASSERT_NE(session, 0u);
  const absl::Time opened = absl::Now();
  SignalWatch watch(ChannelAs("agent", "laptop"), session);
  // The watch runs until the session expires, then ends.
  absl::StatusOr<v1::SignalMessage> ended = watch.Next();
  EXPECT_TRUE(absl::IsFailedPrecondition(ended.status())) << ended.status();
  EXPECT_GE(absl::Now() - opened, absl::Seconds(1));

  for (const auto& [message, role, name] :
       std::vector<std::tuple<v1::SignalMessage, const char*, const char*>>{
           {Offer(session), "agent", "laptop"}, {Answer(session), "connector", kConnectorName}}) {
    grpc::Status status = Signal(message, role, name);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
        << role << ": " << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr("expired at"));
  }
  SignalWatch late(ChannelAs("agent", "laptop"), session);
  absl::Status refused = late.Finished();
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  EXPECT_EQ(Denials("expired"), 3);
  // Another tenant still learns nothing about it.
  EXPECT_EQ(Signal(Offer(session), "agent", "laptop", "globex").error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(IntermediateSignalingTest, OfferWhileTheConnectorIsDetachedIsUnavailable) {
  const uint64_t session = StartWithSession();
  ASSERT_NE(session, 0u);
  absl::StatusOr<grpc::Status> closed = connector_->CloseAndWait();
  ASSERT_TRUE(closed.ok()) << closed.status();
  // Within its grace period the session stays, but nobody can take the Offer.
  grpc::Status status = Signal(Offer(session));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr(kConnectorName));
  EXPECT_EQ(Denials("connector_unavailable"), 1);
}

}  // namespace
}  // namespace ferry
