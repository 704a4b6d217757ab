#include "common/metrics.h"

#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ferry {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(LatencyBucketsSecondsTest, StrictlyIncreasingFromHalfAMillisecondToTenSeconds) {
  const auto& buckets = LatencyBucketsSeconds();
  ASSERT_FALSE(buckets.empty());
  EXPECT_DOUBLE_EQ(buckets.front(), 0.0005);
  EXPECT_DOUBLE_EQ(buckets.back(), 10.0);
  for (size_t i = 1; i < buckets.size(); ++i) {
    EXPECT_LT(buckets[i - 1], buckets[i]) << "at index " << i;
  }
  EXPECT_EQ(&buckets, &LatencyBucketsSeconds());
}

TEST(AddCounterFamilyTest, CounterAppearsInTextWithHelpTypeAndValue) {
  prometheus::Registry registry;
  auto& family = AddCounterFamily(registry, "ferry_test_frames_total", "Frames seen.");
  family.Add({{"kind", "data"}}).Increment(3);
  const std::string text = SerializeText(registry);
  EXPECT_THAT(text, HasSubstr("# HELP ferry_test_frames_total Frames seen.\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE ferry_test_frames_total counter\n"));
  EXPECT_THAT(text, HasSubstr("ferry_test_frames_total{kind=\"data\"} 3\n"));
}

TEST(AddCounterFamilyTest, SameNameTwiceReturnsTheSameFamily) {
  prometheus::Registry registry;
  auto& first = AddCounterFamily(registry, "ferry_test_total", "Help.");
  auto& second = AddCounterFamily(registry, "ferry_test_total", "Help.");
  EXPECT_EQ(&first, &second);
}

TEST(AddCounterFamilyTest, ConstantLabelsAreOnEverySample) {
  prometheus::Registry registry;
  AddCounterFamily(registry, "ferry_test_total", "Help.", {{"component", "relay"}})
      .Add({{"worker", "0"}})
      .Increment();
  EXPECT_THAT(SerializeText(registry),
              HasSubstr("ferry_test_total{component=\"relay\",worker=\"0\"} 1\n"));
}

TEST(AddGaugeFamilyTest, GaugeAppearsWithTypeAndValue) {
  prometheus::Registry registry;
  AddGaugeFamily(registry, "ferry_test_vip_pool_used", "VIPs leased.").Add({}).Set(7);
  const std::string text = SerializeText(registry);
  EXPECT_THAT(text, HasSubstr("# TYPE ferry_test_vip_pool_used gauge\n"));
  EXPECT_THAT(text, HasSubstr("ferry_test_vip_pool_used 7\n"));
}

TEST(AddLatencyHistogramTest, ObservationLandsInTheDefaultBuckets) {
  prometheus::Registry registry;
  auto& family = AddHistogramFamily(registry, "ferry_test_rpc_seconds", "RPC latency.");
  AddLatencyHistogram(family, {{"method", "Register"}}).Observe(0.003);
  const std::string text = SerializeText(registry);
  EXPECT_THAT(text, HasSubstr("# TYPE ferry_test_rpc_seconds histogram\n"));
  EXPECT_THAT(text,
              HasSubstr("ferry_test_rpc_seconds_bucket{method=\"Register\",le=\"0.0025\"} 0\n"));
  EXPECT_THAT(text,
              HasSubstr("ferry_test_rpc_seconds_bucket{method=\"Register\",le=\"0.005\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("ferry_test_rpc_seconds_bucket{method=\"Register\",le=\"10\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("ferry_test_rpc_seconds_bucket{method=\"Register\",le=\"+Inf\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("ferry_test_rpc_seconds_count{method=\"Register\"} 1\n"));
}

TEST(AddLatencyHistogramTest, SameLabelsReturnTheSameHistogram) {
  prometheus::Registry registry;
  auto& family = AddHistogramFamily(registry, "ferry_test_push_seconds", "Push latency.");
  EXPECT_EQ(&AddLatencyHistogram(family, {{"relay", "a"}}),
            &AddLatencyHistogram(family, {{"relay", "a"}}));
  EXPECT_NE(&AddLatencyHistogram(family, {{"relay", "a"}}),
            &AddLatencyHistogram(family, {{"relay", "b"}}));
}

TEST(SerializeTextTest, EmptyRegistryRendersNothing) {
  prometheus::Registry registry;
  EXPECT_EQ(SerializeText(registry), "");
}

TEST(SerializeTextTest, UnusedFamilyHasNoSamples) {
  prometheus::Registry registry;
  AddCounterFamily(registry, "ferry_test_unused_total", "Never incremented.");
  EXPECT_THAT(SerializeText(registry), Not(HasSubstr("ferry_test_unused_total ")));
}

using MetricsDeathTest = ::testing::Test;

TEST_F(MetricsDeathTest, InvalidMetricNameCrashesNamingIt) {
  prometheus::Registry registry;
  EXPECT_DEATH(AddCounterFamily(registry, "ferry-bad-name", "Help."),
               "invalid Prometheus metric name \"ferry-bad-name\"");
}

TEST_F(MetricsDeathTest, InvalidConstantLabelNameCrashesNamingIt) {
  prometheus::Registry registry;
  EXPECT_DEATH(AddGaugeFamily(registry, "ferry_test", "Help.", {{"bad-label", "x"}}),
               "invalid Prometheus label name \"bad-label\"");
}

TEST_F(MetricsDeathTest, NameReusedWithAnotherTypeCrashesNamingIt) {
  prometheus::Registry registry;
  AddCounterFamily(registry, "ferry_test_total", "Help.");
  EXPECT_DEATH(AddGaugeFamily(registry, "ferry_test_total", "Help."),
               "cannot register metric \"ferry_test_total\"");
}

TEST_F(MetricsDeathTest, HistogramLabelRepeatingAConstantLabelCrashes) {
  prometheus::Registry registry;
  auto& family = AddHistogramFamily(registry, "ferry_test_seconds", "Help.", {{"relay", "a"}});
  EXPECT_DEATH(AddLatencyHistogram(family, {{"relay", "b"}}),
               "cannot add a histogram to metric \"ferry_test_seconds\"");
}

}  // namespace
}  // namespace ferry
