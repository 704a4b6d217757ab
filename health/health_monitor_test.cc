#include "health/health_monitor.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/metrics.h"
#include "common/mutex_lock.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "health/testing/test_servers.h"
#include "prometheus/registry.h"

namespace ferry::health {
namespace {

using dataplane::SocketAddress;

constexpr v1::HealthState kUnknown = v1::HEALTH_STATE_UNKNOWN;
constexpr v1::HealthState kHealthy = v1::HEALTH_STATE_HEALTHY;
constexpr v1::HealthState kUnhealthy = v1::HEALTH_STATE_UNHEALTHY;

void SetMillis(google::protobuf::Duration* d, int64_t ms) {
  d->set_seconds(ms / 1000);
  d->set_nanos(static_cast<int32_t>(ms % 1000) * 1000000);
}

v1::HealthCheck Check(int64_t interval_ms, int64_t timeout_ms, uint32_t unhealthy = 2,
                      uint32_t healthy = 2) {
  v1::HealthCheck check;
  SetMillis(check.mutable_interval(), interval_ms);
  SetMillis(check.mutable_timeout(), timeout_ms);
  check.set_unhealthy_threshold(unhealthy);
  check.set_healthy_threshold(healthy);
  return check;
}

// A monitor whose transitions the test can wait for.
class Harness {
 public:
  explicit Harness(prometheus::Registry* registry = nullptr) {
    HealthMonitor::Options options;
    options.registry = registry;
    auto monitor = HealthMonitor::Start(options, [this](const HealthTransition& t) {
      MutexLock lock(&mu_);
      transitions_.push_back(t);
    });
    EXPECT_TRUE(monitor.ok()) << monitor.status();
    monitor_ = *std::move(monitor);
  }

  HealthMonitor& monitor() { return *monitor_; }

  // Waits (bounded) until `key` is in `state`.
  bool WaitForState(const std::string& key, v1::HealthState state,
                    absl::Duration timeout = absl::Seconds(20)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      const auto states = monitor_->States();
      auto it = states.find(key);
      if (it != states.end() && it->second == state) return true;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
  }

  // Waits until States() holds exactly `keys` (a SetTargets was applied).
  bool WaitForKeys(const std::vector<std::string>& keys) {
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (absl::Now() < deadline) {
      std::vector<std::string> have;
      for (const auto& [key, state] : monitor_->States()) have.push_back(key);
      if (have == keys) return true;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return false;
  }

  // The transitions of `key` so far, as "FROM>TO".
  std::vector<std::string> Transitions(const std::string& key) {
    MutexLock lock(&mu_);
    std::vector<std::string> out;
    for (const HealthTransition& t : transitions_) {
      if (t.key == key) {
        out.push_back(absl::StrCat(v1::HealthState_Name(t.from).substr(13), ">",
                                   v1::HealthState_Name(t.to).substr(13)));
      }
    }
    return out;
  }

 private:
  absl::Mutex mu_;
  std::vector<HealthTransition> transitions_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<HealthMonitor> monitor_;
};

// A backend of some kind that the test can take down and bring back on the same address.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual SocketAddress address() const = 0;
  // The check's kind fields.
  virtual void SetKind(v1::HealthCheck& check) const = 0;
  virtual void Down() = 0;
  virtual void Up() = 0;
};

class TcpBackend final : public Backend {
 public:
  TcpBackend() : server_(std::make_unique<testing::TcpTestServer>()) {}
  SocketAddress address() const override { return server_->address(); }
  void SetKind(v1::HealthCheck& check) const override { check.mutable_tcp(); }
  void Down() override { server_->Stop(); }
  void Up() override {
    server_ = std::make_unique<testing::TcpTestServer>("127.0.0.1", testing::PortOf(address()));
  }

 private:
  std::unique_ptr<testing::TcpTestServer> server_;
};

class UdpBackend final : public Backend {
 public:
  UdpBackend() : server_(std::make_unique<testing::UdpTestServer>("pong")) {}
  SocketAddress address() const override { return server_->address(); }
  void SetKind(v1::HealthCheck& check) const override {
    check.mutable_udp()->set_expect_prefix("pong");
  }
  void Down() override { server_->Stop(); }
  void Up() override {
    server_ =
        std::make_unique<testing::UdpTestServer>("pong", "127.0.0.1", testing::PortOf(address()));
  }

 private:
  std::unique_ptr<testing::UdpTestServer> server_;
};

class HttpBackend final : public Backend {
 public:
  explicit HttpBackend(bool tls) : tls_(tls), server_(tls) { Up(); }
  SocketAddress address() const override { return server_.address(); }
  void SetKind(v1::HealthCheck& check) const override {
    check.mutable_http()->set_tls(tls_);
    check.mutable_http()->set_expected_body_substring("ready");
  }
  void Down() override { server_.SetResponse(503, "draining"); }
  void Up() override { server_.SetResponse(200, "ready"); }

 private:
  const bool tls_;
  testing::HttpTestServer server_;
};

class GrpcBackend final : public Backend {
 public:
  GrpcBackend() {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterCallbackGenericService(&generic_);  // gives the server a polled queue
    server_ = builder.BuildAndStart();
    address_ = *dataplane::ParseSocketAddress(absl::StrCat("127.0.0.1:", port));
  }
  ~GrpcBackend() override {
    server_->Shutdown(std::chrono::system_clock::now());
    server_->Wait();
  }
  SocketAddress address() const override { return address_; }
  void SetKind(v1::HealthCheck& check) const override { check.mutable_grpc(); }
  void Down() override { server_->GetHealthCheckService()->SetServingStatus(false); }
  void Up() override { server_->GetHealthCheckService()->SetServingStatus(true); }

 private:
  grpc::CallbackGenericService generic_;
  std::unique_ptr<grpc::Server> server_;
  SocketAddress address_;
};

struct KindCase {
  const char* name;
  std::function<std::unique_ptr<Backend>()> make;
};

class HealthMonitorKindTest : public ::testing::TestWithParam<KindCase> {};

TEST_P(HealthMonitorKindTest, LiveThenDeadThenRecovered) {
  std::unique_ptr<Backend> backend = GetParam().make();
  Harness harness;
  HealthTarget target;
  target.key = "acme/svc/backend";
  target.address = backend->address();
  target.check = Check(/*interval_ms=*/200, /*timeout_ms=*/200);
  backend->SetKind(target.check);
  harness.monitor().SetTargets({target});
  ASSERT_TRUE(harness.WaitForState(target.key, kHealthy));
  backend->Down();
  ASSERT_TRUE(harness.WaitForState(target.key, kUnhealthy));
  backend->Up();
  ASSERT_TRUE(harness.WaitForState(target.key, kHealthy));
  EXPECT_EQ(
      harness.Transitions(target.key),
      (std::vector<std::string>{"UNKNOWN>HEALTHY", "HEALTHY>UNHEALTHY", "UNHEALTHY>HEALTHY"}));
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, HealthMonitorKindTest,
    ::testing::Values(
        KindCase{"Tcp", [] { return std::unique_ptr<Backend>(new TcpBackend()); }},
        KindCase{"Udp", [] { return std::unique_ptr<Backend>(new UdpBackend()); }},
        KindCase{"Http", [] { return std::unique_ptr<Backend>(new HttpBackend(false)); }},
        KindCase{"Https", [] { return std::unique_ptr<Backend>(new HttpBackend(true)); }},
        KindCase{"Grpc", [] { return std::unique_ptr<Backend>(new GrpcBackend()); }}),
    [](const ::testing::TestParamInfo<KindCase>& info) { return info.param.name; });

TEST(HealthMonitorTest, DeadTargetIsUnhealthyFromTheFirstResult) {
  testing::TcpTestServer server;
  server.Stop();
  Harness harness;
  HealthTarget target{"dead", server.address(), "", Check(100, 100, 3, 2)};
  harness.monitor().SetTargets({target});
  ASSERT_TRUE(harness.WaitForState("dead", kUnhealthy));
  EXPECT_EQ(harness.Transitions("dead"), std::vector<std::string>{"UNKNOWN>UNHEALTHY"});
  EXPECT_EQ(harness.monitor().Stats().at("dead").last_detail, "connect: Connection refused");
}

TEST(HealthMonitorTest, ThresholdsDampFlapping) {
  // Down for less than unhealthy_threshold checks: no transition.
  auto server = std::make_unique<testing::TcpTestServer>();
  const SocketAddress address = server->address();
  Harness harness;
  // Huge unhealthy threshold: a few failures in a row must not take it out.
  harness.monitor().SetTargets({{"flappy", address, "", Check(100, 100, 1000, 2)}});
  ASSERT_TRUE(harness.WaitForState("flappy", kHealthy));
  server->Stop();
  // Wait until at least three failures were seen.
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (harness.monitor().Stats().at("flappy").failures < 3 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_GE(harness.monitor().Stats().at("flappy").failures, 3u);
  EXPECT_EQ(harness.monitor().States().at("flappy"), kHealthy);
  EXPECT_EQ(harness.Transitions("flappy"), std::vector<std::string>{"UNKNOWN>HEALTHY"});
}

TEST(HealthMonitorTest, SetTargetsKeepsUnchangedTargetsAndRestartsChangedOnes) {
  testing::TcpTestServer a, b, c;
  Harness harness;
  const HealthTarget kept{"a", a.address(), "", Check(100, 100)};
  HealthTarget changed{"b", b.address(), "", Check(100, 100)};
  const HealthTarget removed{"c", c.address(), "", Check(100, 100)};
  harness.monitor().SetTargets({kept, changed, removed});
  ASSERT_TRUE(harness.WaitForState("a", kHealthy));
  ASSERT_TRUE(harness.WaitForState("b", kHealthy));
  ASSERT_TRUE(harness.WaitForState("c", kHealthy));
  const uint64_t checks_before = harness.monitor().Stats().at("a").checks;

  changed.check.set_healthy_threshold(5);  // a changed check: starts over
  const HealthTarget added{"d", a.address(), "", Check(100, 100)};
  harness.monitor().SetTargets({kept, changed, added});
  ASSERT_TRUE(harness.WaitForKeys({"a", "b", "d"}));
  const auto stats = harness.monitor().Stats();
  // The unchanged target kept its state and its counters at once; nothing restarted it.
  EXPECT_EQ(stats.at("a").state, kHealthy);
  EXPECT_GE(stats.at("a").checks, checks_before);
  ASSERT_TRUE(harness.WaitForState("b", kHealthy));
  ASSERT_TRUE(harness.WaitForState("d", kHealthy));
  EXPECT_EQ(harness.Transitions("a"), std::vector<std::string>{"UNKNOWN>HEALTHY"});
  EXPECT_EQ(harness.Transitions("b"),
            (std::vector<std::string>{"UNKNOWN>HEALTHY", "UNKNOWN>HEALTHY"}));
  // The removed target: gone, and no transition reported for its removal.
  EXPECT_EQ(harness.Transitions("c"), std::vector<std::string>{"UNKNOWN>HEALTHY"});
  EXPECT_EQ(harness.monitor().States().count("c"), 0u);
}

TEST(HealthMonitorTest, MetricsCountChecksTransitionsAndTargets) {
  prometheus::Registry registry;
  testing::TcpTestServer server;
  Harness harness(&registry);
  harness.monitor().SetTargets({{"m", server.address(), "", Check(100, 100)}});
  ASSERT_TRUE(harness.WaitForState("m", kHealthy));
  const std::string text = SerializeText(registry);
  EXPECT_NE(text.find("ferry_connector_health_checks_total{kind=\"tcp\",result=\"ok\"}"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("ferry_connector_health_transitions_total{kind=\"tcp\",to=\"healthy\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("ferry_connector_health_targets 1"), std::string::npos) << text;
  EXPECT_NE(text.find("ferry_connector_health_check_lag_seconds_count"), std::string::npos) << text;
}

// The "no drift" evidence: a thousand targets on the monitor's one thread, each checked on its
// own 200ms schedule for about two seconds, every one gets the count of checks its schedule
// implies (give or take the one at either edge of the window).
TEST(HealthMonitorTest, AThousandTargetsOnOneThreadKeepTheirSchedules) {
  constexpr int kTargets = 1000;
  constexpr int64_t kIntervalMs = 200;
  std::vector<std::unique_ptr<testing::TcpTestServer>> servers;
  for (int i = 0; i < 4; ++i) servers.push_back(std::make_unique<testing::TcpTestServer>());
  Harness harness;
  std::vector<HealthTarget> targets;
  std::vector<std::string> keys;
  for (int i = 0; i < kTargets; ++i) {
    targets.push_back({absl::StrCat("t", 1000 + i), servers[i % servers.size()]->address(), "",
                       Check(kIntervalMs, kIntervalMs)});
    keys.push_back(targets.back().key);
  }
  const absl::Time set_at = absl::Now();
  harness.monitor().SetTargets(targets);
  ASSERT_TRUE(harness.WaitForKeys(keys));
  const absl::Time applied_at = absl::Now();
  absl::SleepFor(absl::Seconds(2));
  const absl::Time before = absl::Now();
  const auto stats = harness.monitor().Stats();
  const absl::Time after = absl::Now();
  // A target's checks fall at first + k*interval, first within one interval of when the set was
  // applied; so by the snapshot it has had between floor(elapsed / interval) and that + 1.
  const int64_t low = absl::ToInt64Milliseconds(before - applied_at) / kIntervalMs;
  const int64_t high = absl::ToInt64Milliseconds(after - set_at) / kIntervalMs + 1;
  int healthy = 0;
  for (const auto& [key, s] : stats) {
    EXPECT_GE(static_cast<int64_t>(s.checks), low - 1) << key;
    EXPECT_LE(static_cast<int64_t>(s.checks), high) << key;
    healthy += s.state == kHealthy;
  }
  EXPECT_EQ(healthy, kTargets);
}

}  // namespace
}  // namespace ferry::health
