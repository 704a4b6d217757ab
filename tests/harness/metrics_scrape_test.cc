#include "tests/harness/metrics_scrape.h"

#include <cmath>
#include <limits>

#include "gtest/gtest.h"

namespace ferry::harness {
namespace {

constexpr char kText[] = R"(# HELP ferry_auth_failures_total Refused peers by reason.
# TYPE ferry_auth_failures_total counter
ferry_auth_failures_total{reason="unknown_ca"} 3
ferry_auth_failures_total{reason="no_uri_san"} 1
ferry_rpcs_total{method="/ferry.v1.Admin/ListServices",code="OK"} 7
ferry_rpcs_total{code="OK",method="/ferry.v1.Admin/GetStatus"} 2 1700000000000
weird{msg="a \"quoted\" \\ value, with {braces}"} 5
ferry_route_version 42
ferry_route_push_latency_seconds_bucket{le="0.001"} 2
ferry_route_push_latency_seconds_bucket{le="0.01"} 6
ferry_route_push_latency_seconds_bucket{le="0.1"} 10
ferry_route_push_latency_seconds_bucket{le="+Inf"} 10
ferry_route_push_latency_seconds_count 10
)";

TEST(MetricValueTest, FindsSamplesByNameAndExactLabels) {
  struct Case {
    const char* name;
    MetricLabels labels;
    std::optional<double> want;
  };
  const Case cases[] = {
      {"ferry_route_version", {}, 42},
      {"ferry_auth_failures_total", {{"reason", "unknown_ca"}}, 3},
      {"ferry_auth_failures_total", {{"reason", "no_uri_san"}}, 1},
      {"ferry_auth_failures_total", {{"reason", "wrong_role"}}, std::nullopt},
      {"ferry_auth_failures_total", {}, std::nullopt},  // labels must match exactly
      {"ferry_auth_failures", {{"reason", "unknown_ca"}}, std::nullopt},  // no prefix match
      {"ferry_rpcs_total", {{"method", "/ferry.v1.Admin/ListServices"}, {"code", "OK"}}, 7},
      // Label order in the text does not matter; a trailing timestamp is ignored.
      {"ferry_rpcs_total", {{"method", "/ferry.v1.Admin/GetStatus"}, {"code", "OK"}}, 2},
      {"weird", {{"msg", "a \"quoted\" \\ value, with {braces}"}}, 5},
      {"ferry_route_push_latency_seconds_bucket", {{"le", "+Inf"}}, 10},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(MetricValue(kText, c.name, c.labels), c.want) << c.name;
  }
  EXPECT_EQ(MetricValueOr0(kText, "ferry_auth_failures_total", {{"reason", "wrong_role"}}), 0);
}

TEST(HistogramTest, BucketsAreSortedWithInfLast) {
  auto buckets = HistogramBuckets(kText, "ferry_route_push_latency_seconds");
  ASSERT_EQ(buckets.size(), 4u);
  EXPECT_EQ(buckets[0], std::make_pair(0.001, 2.0));
  EXPECT_EQ(buckets[2], std::make_pair(0.1, 10.0));
  EXPECT_TRUE(std::isinf(buckets[3].first));
  EXPECT_TRUE(HistogramBuckets(kText, "ferry_nothing").empty());
}

TEST(HistogramTest, QuantileInterpolatesLikePrometheus) {
  auto buckets = HistogramBuckets(kText, "ferry_route_push_latency_seconds");
  // rank 5 of 10 lies in (0.001, 0.01] holding ranks 3..6: 0.001 + 0.009 * 3/4.
  EXPECT_NEAR(*BucketQuantile(0.5, buckets), 0.001 + 0.009 * 0.75, 1e-12);
  // rank 1 lies in the first bucket, interpolated from 0.
  EXPECT_NEAR(*BucketQuantile(0.1, buckets), 0.0005, 1e-12);
  EXPECT_NEAR(*BucketQuantile(1.0, buckets), 0.1, 1e-12);
  EXPECT_EQ(BucketQuantile(0.5, {}), std::nullopt);
  const double inf = std::numeric_limits<double>::infinity();
  // Everything above the last finite bound: the highest finite bound.
  EXPECT_EQ(*BucketQuantile(0.99, {{0.1, 0}, {inf, 4}}), 0.1);
}

TEST(HistogramTest, SubtractGivesTheObservationsBetweenScrapes) {
  const double inf = std::numeric_limits<double>::infinity();
  auto diff = SubtractBuckets({{0.01, 5}, {0.1, 9}, {inf, 10}}, {{0.01, 1}, {inf, 2}});
  ASSERT_EQ(diff.size(), 3u);
  EXPECT_EQ(diff[0].second, 4);
  EXPECT_EQ(diff[1].second, 9);  // absent before: 0
  EXPECT_EQ(diff[2].second, 8);
}

TEST(HttpGetTest, RefusedConnectionIsUnavailable) {
  // Port 1 on loopback: nothing listens there in a test sandbox.
  absl::StatusOr<HttpGetResult> result = HttpGet("127.0.0.1:1", "/metrics");
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable) << result.status();
  EXPECT_EQ(HttpGet("localhost", "/").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ferry::harness
