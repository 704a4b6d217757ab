// Route push across many watchers, against the real ferry-intermediate: for 1,
// 10 and 100 relay watchers, a series of admin registrations must each reach
// every watcher (which ACKs it) carrying the new backend, and the server must
// record every watcher's ACK of the final version.
//
// Along the way the test PRINTS the change-to-ACK latency (p50/p99), measured
// on the client side (from the start of the admin call that made the change to
// the moment each watcher had sent its ACK) and as the server's own
// ferry_route_push_latency_seconds histogram sees it (change to ACK received).
// The figures are for reading, not asserted: speed is not a test's business.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "ferry/v1/admin.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/harness/channels.h"
#include "tests/harness/dev_pki_fixture.h"
#include "tests/harness/intermediate_process.h"
#include "tests/harness/metrics_scrape.h"
#include "tests/harness/route_watcher.h"
#include "tests/harness/test_connector.h"

namespace ferry {
namespace {

using harness::FindRoute;
using harness::RouteWatcher;

constexpr char kLatencyHistogram[] = "ferry_route_push_latency_seconds";
// Changes made (and measured) for each watcher count.
constexpr int kChanges = 20;

// Nearest-rank percentile of `samples` (sorted in place); `samples` must not
// be empty.
double Percentile(std::vector<double>& samples, double p) {
  std::sort(samples.begin(), samples.end());
  size_t rank = static_cast<size_t>(p * samples.size() + 0.999999);
  rank = std::clamp<size_t>(rank, 1, samples.size());
  return samples[rank - 1];
}

std::string Ms(double seconds) { return absl::StrFormat("%.2f ms", seconds * 1e3); }

class RoutePushLatencyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<harness::DevPki*> pki = harness::SharedDevPki();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *pki;
    absl::StatusOr<std::unique_ptr<harness::IntermediateProcess>> started =
        harness::IntermediateProcess::Start(*pki_);
    ASSERT_TRUE(started.ok()) << started.status();
    intermediate_ = *std::move(started);
    // One admin channel for the whole test, so a measured change does not
    // pay for a TLS handshake.
    admin_ = v1::Admin::NewStub(ChannelAs("admin", "alice"));
  }

  std::shared_ptr<grpc::Channel> ChannelAs(const std::string& role, const std::string& name) {
    absl::StatusOr<TlsFiles> files = pki_->Issue("acme", role, name);
    EXPECT_TRUE(files.ok()) << files.status();
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        harness::MtlsChannel(intermediate_->grpc_address(), *files);
    EXPECT_TRUE(channel.ok()) << channel.status();
    return channel.ok() ? *channel : nullptr;
  }

  v1::GetStatusResponse Status() {
    v1::GetStatusResponse response;
    grpc::Status status =
        admin_->GetStatus(harness::ContextWithDeadline().get(), v1::GetStatusRequest(), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  std::vector<std::pair<double, double>> ServerBuckets() {
    absl::StatusOr<std::string> text = harness::FetchMetrics(intermediate_->admin_address());
    EXPECT_TRUE(text.ok()) << text.status();
    return text.ok() ? harness::HistogramBuckets(*text, kLatencyHistogram)
                     : std::vector<std::pair<double, double>>{};
  }

  // Runs kChanges registrations with `watchers` relays connected, asserts
  // that each reached every watcher, and prints the latencies.
  void MeasureWith(int watcher_count) {
    SCOPED_TRACE(absl::StrCat(watcher_count, " watchers"));
    std::vector<std::unique_ptr<RouteWatcher>> watchers;
    for (int i = 0; i < watcher_count; ++i) {
      const std::string name = absl::StrCat("relay-", i);
      watchers.push_back(std::make_unique<RouteWatcher>(ChannelAs("relay", name), name));
      ASSERT_TRUE(watchers.back()->Start().ok());
    }
    // Everyone has the current state before the clock starts.
    const uint64_t start_version = Status().route_version();
    for (auto& watcher : watchers) {
      ASSERT_TRUE(
          watcher->WaitFor([&](const v1::RouteSnapshot& s) { return s.version() >= start_version; })
              .ok());
    }
    ASSERT_EQ(Status().relays_size(), watcher_count);
    const auto server_before = ServerBuckets();

    std::vector<double> client_latencies;
    std::vector<std::string> registered;
    for (int k = 0; k < kChanges; ++k) {
      const std::string name = absl::StrCat("lat-", watcher_count, "-", k);
      const std::string backend = absl::StrCat("127.0.0.1:", 20000 + k);
      v1::RegisterServiceRequest request;
      *request.mutable_service() = harness::MakeServiceSpec(name, {backend});
      request.mutable_service()->set_connector("web-1");
      v1::RegisterServiceResponse response;
      const absl::Time changed = absl::Now();
      grpc::Status status =
          admin_->RegisterService(harness::ContextWithDeadline().get(), request, &response);
      ASSERT_TRUE(status.ok()) << status.error_message();
      registered.push_back(name);
      for (auto& watcher : watchers) {
        absl::StatusOr<RouteWatcher::Received> got = watcher->WaitFor(
            [&](const v1::RouteSnapshot& s) {
              const v1::RouteService* route = FindRoute(s, name);
              return route != nullptr && route->backends_size() == 1 &&
                     route->backends(0) == backend;
            },
            absl::Seconds(30));
        ASSERT_TRUE(got.ok()) << got.status();
        EXPECT_TRUE(got->acked);
        client_latencies.push_back(absl::ToDoubleSeconds(got->answered_at - changed));
      }
    }

    // The server has every watcher's ACK of the final version.
    const uint64_t final_version = Status().route_version();
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    v1::GetStatusResponse status;
    bool all_acked = false;
    while (!all_acked && absl::Now() < deadline) {
      status = Status();
      all_acked = status.relays_size() == watcher_count;
      for (const v1::Peer& relay : status.relays()) {
        all_acked = all_acked && relay.acked_route_version() == final_version;
      }
      if (!all_acked) absl::SleepFor(absl::Milliseconds(20));
    }
    EXPECT_TRUE(all_acked) << status.ShortDebugString();
    for (auto& watcher : watchers) {
      EXPECT_TRUE(watcher->VersionsStrictlyIncrease()) << watcher->DescribeVersions();
    }

    // Server-side view: the ACKs observed during this run.
    const auto server = harness::SubtractBuckets(ServerBuckets(), server_before);
    const double server_count = server.empty() ? 0 : server.back().second;
    EXPECT_GE(server_count, watcher_count * kChanges);

    ASSERT_EQ(client_latencies.size(), static_cast<size_t>(watcher_count * kChanges));
    std::vector<double> sorted = client_latencies;
    const double p50 = Percentile(sorted, 0.50);
    const double p99 = Percentile(sorted, 0.99);
    const double max = sorted.back();
    const std::optional<double> server_p50 = harness::BucketQuantile(0.50, server);
    const std::optional<double> server_p99 = harness::BucketQuantile(0.99, server);
    std::printf(
        "route push latency, %3d watchers, %4zu samples: client change->ACK p50 %s p99 %s max %s"
        " | server histogram (%0.f ACKs) p50 %s p99 %s\n",
        watcher_count, client_latencies.size(), Ms(p50).c_str(), Ms(p99).c_str(), Ms(max).c_str(),
        server_count, server_p50 ? Ms(*server_p50).c_str() : "n/a",
        server_p99 ? Ms(*server_p99).c_str() : "n/a");
    std::fflush(stdout);
    RecordProperty(absl::StrCat("client_p50_ms_", watcher_count),
                   absl::StrFormat("%.3f", p50 * 1e3));
    RecordProperty(absl::StrCat("client_p99_ms_", watcher_count),
                   absl::StrFormat("%.3f", p99 * 1e3));

    // Clean up for the next run (not measured).
    for (const std::string& name : registered) {
      v1::DeregisterServiceRequest request;
      request.set_name(name);
      v1::DeregisterServiceResponse response;
      ASSERT_TRUE(
          admin_->DeregisterService(harness::ContextWithDeadline().get(), request, &response).ok());
    }
    watchers.clear();
  }

  harness::DevPki* pki_ = nullptr;
  std::unique_ptr<harness::IntermediateProcess> intermediate_;
  std::unique_ptr<v1::Admin::Stub> admin_;
};

TEST_F(RoutePushLatencyTest, EveryWatcherAcksEveryChangeWith1And10And100Watchers) {
  harness::TestConnector connector(ChannelAs("connector", "web-1"));
  ASSERT_TRUE(connector.Open(v1::Hello()).ok());
  ASSERT_TRUE(connector.WaitForWelcome().ok());
  connector.StartKeepalives(absl::Seconds(1));

  for (int watchers : {1, 10, 100}) {
    MeasureWith(watchers);
    if (HasFatalFailure()) return;
  }
  // The connector was told about every registration (and every removal).
  int pushes = 0;
  for (const v1::ConnectorCommand& command : connector.commands()) {
    pushes += command.has_api_services();
  }
  EXPECT_EQ(pushes, 2 * 3 * kChanges);
}

}  // namespace
}  // namespace ferry
