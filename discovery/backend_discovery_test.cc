#include "discovery/backend_discovery.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "discovery/dns_resolver.h"
#include "discovery/testing/dnsmasq_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"

namespace ferry::discovery {
namespace {

using testing::DnsmasqServer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr auto kWait = std::chrono::seconds(15);

std::vector<std::string> Strings(const std::vector<dataplane::SocketAddress>& addresses) {
  std::vector<std::string> out;
  for (const auto& address : addresses) out.push_back(address.ToString());
  return out;
}

// Records on_change calls (made on the resolver thread) for the test thread to wait on.
class ChangeRecorder {
 public:
  BackendDiscovery::ChangeCallback Callback() {
    return [this](const std::string& source, const std::vector<dataplane::SocketAddress>& set) {
      std::lock_guard<std::mutex> lock(mu_);
      changes_.emplace_back(source, Strings(set));
      cv_.notify_all();
    };
  }

  // Waits (bounded) until the latest reported set of `source` is `expected`.
  bool WaitFor(const std::string& source, const std::vector<std::string>& expected) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kWait, [&] {
      for (auto it = changes_.rbegin(); it != changes_.rend(); ++it) {
        if (it->first == source) return it->second == expected;
      }
      return false;
    });
  }

  int Count(const std::string& source) {
    std::lock_guard<std::mutex> lock(mu_);
    int count = 0;
    for (const auto& change : changes_) count += change.first == source ? 1 : 0;
    return count;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<std::string, std::vector<std::string>>> changes_;
};

// Polls `condition` every 10 ms for up to kWait.
template <typename Condition>
bool Eventually(Condition condition) {
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return condition();
}

// The value of a counter or gauge series in `registry`, or -1 when absent.
double MetricValue(prometheus::Registry& registry, const std::string& name,
                   const std::string& label, const std::string& value) {
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& metric : family.metric) {
      for (const auto& pair : metric.label) {
        if (pair.name == label && pair.value == value) {
          return family.type == prometheus::MetricType::Counter ? metric.counter.value
                                                                : metric.gauge.value;
        }
      }
    }
  }
  return -1;
}

class BackendDiscoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!DnsmasqServer::Installed()) {
      GTEST_SKIP() << DnsmasqServer::kBinary << " is absent (package dnsmasq-base)";
    }
    DnsmasqServer::Options options;
    options.ttl_seconds = 1;
    options.hosts = {"10.0.0.1 a.test.internal", "10.0.1.1 t1.test.internal",
                     "10.0.1.2 t2.test.internal"};
    options.srv_hosts = {"_http._tcp.svc.test.internal,t1.test.internal,8001",
                         "_http._tcp.svc.test.internal,t2.test.internal,8002"};
    auto server = DnsmasqServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);

    auto resolver = DnsResolver::Create({{server_->address()}, absl::Milliseconds(300), 1});
    ASSERT_TRUE(resolver.ok()) << resolver.status();
    BackendDiscovery::Options discovery_options;
    discovery_options.min_ttl = absl::Milliseconds(100);
    discovery_options.max_ttl = absl::Seconds(1);
    discovery_options.registry = &registry_;
    auto discovery =
        BackendDiscovery::Create(std::move(*resolver), discovery_options, recorder_.Callback());
    ASSERT_TRUE(discovery.ok()) << discovery.status();
    discovery_ = std::move(*discovery);
  }

  void TearDown() override {
    discovery_.reset();  // Before the recorder and the registry go.
    if (HasFailure() && server_ != nullptr) std::cerr << "dnsmasq log:\n" << server_->Log();
  }

  prometheus::Registry registry_;
  ChangeRecorder recorder_;
  std::unique_ptr<DnsmasqServer> server_;
  std::unique_ptr<BackendDiscovery> discovery_;
};

constexpr char kHostSource[] = "dns://a.test.internal:8080";
constexpr char kSrvSource[] = "srv://_http._tcp.svc.test.internal";

TEST_F(BackendDiscoveryTest, FollowsAChangedHostsFile) {
  ASSERT_TRUE(discovery_->SetSources({kHostSource}).ok());
  ASSERT_TRUE(recorder_.WaitFor(kHostSource, {"10.0.0.1:8080"}));
  EXPECT_THAT(Strings(discovery_->Current(kHostSource)), ElementsAre("10.0.0.1:8080"));
  EXPECT_EQ(MetricValue(registry_, "ferry_connector_dns_backends", "source", kHostSource), 1);

  ASSERT_TRUE(server_->SetHosts({"10.0.0.3 a.test.internal", "10.0.0.2 a.test.internal"}).ok());
  ASSERT_TRUE(recorder_.WaitFor(kHostSource, {"10.0.0.2:8080", "10.0.0.3:8080"}));
  EXPECT_THAT(Strings(discovery_->Current(kHostSource)),
              ElementsAre("10.0.0.2:8080", "10.0.0.3:8080"));
  EXPECT_EQ(MetricValue(registry_, "ferry_connector_dns_backends", "source", kHostSource), 2);
  EXPECT_EQ(discovery_->Failures(kHostSource), 0);
  EXPECT_GE(MetricValue(registry_, "ferry_connector_dns_resolutions_total", "result", "ok"), 2);
}

TEST_F(BackendDiscoveryTest, SrvSourceFollowsItsTargets) {
  ASSERT_TRUE(discovery_->SetSources({kSrvSource}).ok());
  ASSERT_TRUE(recorder_.WaitFor(kSrvSource, {"10.0.1.1:8001", "10.0.1.2:8002"}));

  ASSERT_TRUE(server_
                  ->SetHosts({"10.0.0.1 a.test.internal", "10.0.1.1 t1.test.internal",
                              "10.0.1.3 t2.test.internal"})
                  .ok());
  ASSERT_TRUE(recorder_.WaitFor(kSrvSource, {"10.0.1.1:8001", "10.0.1.3:8002"}));
}

TEST_F(BackendDiscoveryTest, KeepsTheLastSetWhileTheServerIsDownAndPicksUpWhenItReturns) {
  ASSERT_TRUE(discovery_->SetSources({kHostSource}).ok());
  ASSERT_TRUE(recorder_.WaitFor(kHostSource, {"10.0.0.1:8080"}));
  const int changes_before = recorder_.Count(kHostSource);

  ASSERT_TRUE(server_->Stop().ok());
  ASSERT_TRUE(Eventually([&] { return discovery_->Failures(kHostSource) >= 2; }));
  EXPECT_THAT(Strings(discovery_->Current(kHostSource)), ElementsAre("10.0.0.1:8080"));
  EXPECT_EQ(recorder_.Count(kHostSource), changes_before);
  EXPECT_EQ(discovery_->LastError(kHostSource).code(), absl::StatusCode::kUnavailable)
      << discovery_->LastError(kHostSource);
  EXPECT_GE(MetricValue(registry_, "ferry_connector_dns_resolutions_total", "result", "error"), 2);
  EXPECT_EQ(MetricValue(registry_, "ferry_connector_dns_backends", "source", kHostSource), 1);

  ASSERT_TRUE(server_->SetHosts({"10.0.0.4 a.test.internal"}).ok());
  ASSERT_TRUE(server_->Resume().ok());
  ASSERT_TRUE(recorder_.WaitFor(kHostSource, {"10.0.0.4:8080"}));
  EXPECT_TRUE(Eventually([&] { return discovery_->LastError(kHostSource).ok(); }));
}

TEST_F(BackendDiscoveryTest, NxdomainKeepsTheLastSetAndCounts) {
  ASSERT_TRUE(discovery_->SetSources({kHostSource}).ok());
  ASSERT_TRUE(recorder_.WaitFor(kHostSource, {"10.0.0.1:8080"}));

  ASSERT_TRUE(server_->SetHosts({"10.0.1.1 t1.test.internal"}).ok());
  ASSERT_TRUE(Eventually([&] { return discovery_->Failures(kHostSource) >= 1; }));
  EXPECT_EQ(discovery_->LastError(kHostSource).code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Strings(discovery_->Current(kHostSource)), ElementsAre("10.0.0.1:8080"));
}

TEST_F(BackendDiscoveryTest, SetSourcesRemovesASource) {
  ASSERT_TRUE(discovery_->SetSources({kHostSource, kSrvSource}).ok());
  ASSERT_TRUE(recorder_.WaitFor(kHostSource, {"10.0.0.1:8080"}));
  ASSERT_TRUE(recorder_.WaitFor(kSrvSource, {"10.0.1.1:8001", "10.0.1.2:8002"}));

  ASSERT_TRUE(discovery_->SetSources({kHostSource}).ok());
  const int srv_changes = recorder_.Count(kSrvSource);
  EXPECT_THAT(discovery_->Current(kSrvSource), IsEmpty());
  EXPECT_EQ(MetricValue(registry_, "ferry_connector_dns_backends", "source", kSrvSource), -1);

  // Both sources' records change; only the kept one may report it.
  ASSERT_TRUE(server_
                  ->SetHosts({"10.0.0.5 a.test.internal", "10.0.1.5 t1.test.internal",
                              "10.0.1.6 t2.test.internal"})
                  .ok());
  ASSERT_TRUE(recorder_.WaitFor(kHostSource, {"10.0.0.5:8080"}));
  EXPECT_EQ(recorder_.Count(kSrvSource), srv_changes);
  EXPECT_THAT(discovery_->Current(kSrvSource), IsEmpty());
}

TEST_F(BackendDiscoveryTest, InvalidSourceChangesNothing) {
  ASSERT_TRUE(discovery_->SetSources({kHostSource}).ok());
  ASSERT_TRUE(recorder_.WaitFor(kHostSource, {"10.0.0.1:8080"}));

  const absl::Status status = discovery_->SetSources({kSrvSource, "dns://a.test.internal:0"});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("dns://a.test.internal:0"));
  EXPECT_THAT(Strings(discovery_->Current(kHostSource)), ElementsAre("10.0.0.1:8080"));
  // The valid source next to the bad one was not added either.
  EXPECT_EQ(MetricValue(registry_, "ferry_connector_dns_backends", "source", kSrvSource), -1);
}

TEST_F(BackendDiscoveryTest, SchedulesByTheInjectedClock) {
  std::atomic<int64_t> now_ns{absl::ToUnixNanos(absl::Now())};
  prometheus::Registry registry;
  ChangeRecorder recorder;
  auto resolver = DnsResolver::Create({{server_->address()}, absl::Milliseconds(300), 1});
  ASSERT_TRUE(resolver.ok()) << resolver.status();
  BackendDiscovery::Options options;
  options.min_ttl = absl::Milliseconds(100);
  options.max_ttl = absl::Seconds(10);
  options.registry = &registry;
  options.now = [&now_ns] { return absl::FromUnixNanos(now_ns.load()); };
  auto discovery = BackendDiscovery::Create(std::move(*resolver), options, recorder.Callback());
  ASSERT_TRUE(discovery.ok()) << discovery.status();

  ASSERT_TRUE((*discovery)->SetSources({kHostSource}).ok());
  ASSERT_TRUE(recorder.WaitFor(kHostSource, {"10.0.0.1:8080"}));
  // The answer's TTL is 1s. Real time passes it, the injected clock does not: no new query.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(MetricValue(registry, "ferry_connector_dns_resolutions_total", "result", "ok"), 1);

  now_ns += absl::ToInt64Nanoseconds(absl::Seconds(2));
  EXPECT_TRUE(Eventually([&] {
    return MetricValue(registry, "ferry_connector_dns_resolutions_total", "result", "ok") >= 2;
  }));
  discovery->reset();  // Before the clock, recorder and registry it uses.
}

TEST(ParseDiscoverySourceTest, AcceptsBothFormsAndSaysWhatIsWrong) {
  struct Case {
    std::string source;
    bool ok;
    DiscoverySource::Kind kind;
    std::string name;
    uint16_t port;
    std::string error;  // A substring of the message when !ok.
  };
  using Kind = DiscoverySource::Kind;
  const Case cases[] = {
      {"dns://backend.internal:8080", true, Kind::kHost, "backend.internal", 8080, ""},
      {"dns://backend:1", true, Kind::kHost, "backend", 1, ""},
      {"dns://backend.internal.:65535", true, Kind::kHost, "backend.internal.", 65535, ""},
      {"srv://_http._tcp.example.internal", true, Kind::kSrv, "_http._tcp.example.internal", 0, ""},
      {"dns://pinghost.internal", true, Kind::kHost, "pinghost.internal", 0, ""},
      {"dns://backend.internal:", false, Kind::kHost, "", 0, "1..65535"},
      {"dns://backend.internal:0", false, Kind::kHost, "", 0, "1..65535"},
      {"dns://backend.internal:65536", false, Kind::kHost, "", 0, "1..65535"},
      {"dns://backend.internal:+80", false, Kind::kHost, "", 0, "1..65535"},
      {"dns://:80", false, Kind::kHost, "", 0, "empty"},
      {"dns://", false, Kind::kHost, "", 0, "empty"},
      {"dns://10.0.0.1:80", false, Kind::kHost, "", 0, "IP address"},
      {"dns://bad..name:80", false, Kind::kHost, "", 0, "label"},
      {"dns://bad name:80", false, Kind::kHost, "", 0, "' '"},
      {"srv://_http._tcp.example.internal:80", false, Kind::kSrv, "", 0, "no port"},
      {"srv://http.tcp.example", false, Kind::kSrv, "", 0, "_service._proto.name"},
      {"srv://_http._tcp", false, Kind::kSrv, "", 0, "_service._proto.name"},
      {"backend.internal:80", false, Kind::kHost, "", 0, "unknown scheme"},
  };
  for (const Case& c : cases) {
    auto parsed = ParseDiscoverySource(c.source);
    if (!c.ok) {
      EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << c.source;
      EXPECT_THAT(parsed.status().message(), HasSubstr(c.error)) << c.source;
      continue;
    }
    ASSERT_TRUE(parsed.ok()) << c.source << ": " << parsed.status();
    EXPECT_EQ(parsed->kind, c.kind) << c.source;
    EXPECT_EQ(parsed->name, c.name) << c.source;
    EXPECT_EQ(parsed->port, c.port) << c.source;
  }
  EXPECT_TRUE(IsDiscoverySource("dns://x"));
  EXPECT_TRUE(IsDiscoverySource("srv://x"));
  EXPECT_FALSE(IsDiscoverySource("10.0.0.1:80"));
}

TEST(RefreshDelayTest, ClampsTheTtl) {
  const absl::Duration min = absl::Seconds(5);
  const absl::Duration max = absl::Seconds(300);
  EXPECT_EQ(RefreshDelay(absl::ZeroDuration(), min, max), min);
  EXPECT_EQ(RefreshDelay(absl::Seconds(1), min, max), min);
  EXPECT_EQ(RefreshDelay(absl::Seconds(60), min, max), absl::Seconds(60));
  EXPECT_EQ(RefreshDelay(absl::Hours(24), min, max), max);
}

TEST(BackendDiscoveryCreateTest, RejectsBadOptions) {
  auto make = [](absl::Duration min, absl::Duration max) {
    auto resolver = DnsResolver::Create({{"127.0.0.1"}, absl::Seconds(1), 1});
    EXPECT_TRUE(resolver.ok());
    BackendDiscovery::Options options;
    options.min_ttl = min;
    options.max_ttl = max;
    return BackendDiscovery::Create(std::move(*resolver), options,
                                    [](const std::string&, const auto&) {})
        .status();
  };
  EXPECT_TRUE(make(absl::Milliseconds(100), absl::Seconds(1)).ok());
  EXPECT_EQ(make(absl::Milliseconds(99), absl::Seconds(1)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(make(absl::Seconds(10), absl::Seconds(5)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      BackendDiscovery::Create(nullptr, {}, [](const std::string&, const auto&) {}).status().code(),
      absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ferry::discovery
