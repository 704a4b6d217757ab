// health_monitor_bench: N TCP targets (against a few loopback listeners) on one HealthMonitor for
// a while, then the distribution of how late checks started against their schedule (the "no
// drift" evidence at scale) and the spread of per-target check counts.
//
//   bazel run --config=opt //health:health_monitor_bench -- --targets=1000 --seconds=10

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "health/health_monitor.h"
#include "health/testing/test_servers.h"
#include "prometheus/registry.h"

ABSL_FLAG(int, targets, 1000, "health check targets");
ABSL_FLAG(int, seconds, 10, "how long to run");
ABSL_FLAG(int, interval_ms, 200, "each target's check interval");
ABSL_FLAG(int, listeners, 4, "loopback TCP listeners the targets spread over");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  using ferry::health::HealthMonitor;
  using ferry::health::HealthTarget;
  const int n = absl::GetFlag(FLAGS_targets);
  const int interval_ms = absl::GetFlag(FLAGS_interval_ms);
  std::vector<std::unique_ptr<ferry::health::testing::TcpTestServer>> servers;
  for (int i = 0; i < std::max(1, absl::GetFlag(FLAGS_listeners)); ++i) {
    servers.push_back(std::make_unique<ferry::health::testing::TcpTestServer>());
  }
  prometheus::Registry registry;
  HealthMonitor::Options options;
  options.registry = &registry;
  auto monitor = HealthMonitor::Start(options, nullptr);
  if (!monitor.ok()) {
    fprintf(stderr, "%s\n", monitor.status().ToString().c_str());
    return 1;
  }
  std::vector<HealthTarget> targets(n);
  for (int i = 0; i < n; ++i) {
    targets[i].key = absl::StrCat("t", i);
    targets[i].address = servers[i % servers.size()]->address();
    targets[i].check.mutable_interval()->set_nanos(interval_ms % 1000 * 1000000);
    targets[i].check.mutable_interval()->set_seconds(interval_ms / 1000);
    *targets[i].check.mutable_timeout() = targets[i].check.interval();
    targets[i].check.mutable_tcp();
  }
  (*monitor)->SetTargets(targets);
  absl::SleepFor(absl::Seconds(absl::GetFlag(FLAGS_seconds)));
  const auto stats = (*monitor)->Stats();
  monitor->reset();

  uint64_t min_checks = UINT64_MAX, max_checks = 0, late = 0, failures = 0;
  for (const auto& [key, s] : stats) {
    min_checks = std::min(min_checks, s.checks);
    max_checks = std::max(max_checks, s.checks);
    late += s.late;
    failures += s.failures;
  }
  printf(
      "targets=%d interval=%dms seconds=%d: checks per target %llu..%llu (expected ~%d), "
      "late %llu, failed %llu\n",
      n, interval_ms, absl::GetFlag(FLAGS_seconds), static_cast<unsigned long long>(min_checks),
      static_cast<unsigned long long>(max_checks),
      absl::GetFlag(FLAGS_seconds) * 1000 / interval_ms, static_cast<unsigned long long>(late),
      static_cast<unsigned long long>(failures));
  printf("check start lag (scheduled -> started), cumulative:\n");
  for (const auto& family : registry.Collect()) {
    if (family.name != "ferry_connector_health_check_lag_seconds") continue;
    for (const auto& metric : family.metric) {
      const auto& h = metric.histogram;
      for (const auto& bucket : h.bucket) {
        printf("  <= %-8g %8llu  (%.2f%%)\n", bucket.upper_bound,
               static_cast<unsigned long long>(bucket.cumulative_count),
               100.0 * bucket.cumulative_count / std::max<uint64_t>(1, h.sample_count));
      }
      printf("  samples %llu, mean %.6fs\n", static_cast<unsigned long long>(h.sample_count),
             h.sample_sum / std::max<uint64_t>(1, h.sample_count));
    }
  }
  return 0;
}
