#include "health/check_defaults.h"

#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace ferry::health {
namespace {

TEST(CheckDefaultsTest, EmptyCheckGetsTheProtoDefaults) {
  const v1::HealthCheck check = WithDefaults(v1::HealthCheck());
  EXPECT_EQ(Interval(check), absl::Seconds(5));
  EXPECT_EQ(Timeout(check), absl::Seconds(2));
  EXPECT_EQ(Jitter(check), absl::ZeroDuration());
  EXPECT_EQ(check.unhealthy_threshold(), 3u);
  EXPECT_EQ(check.healthy_threshold(), 2u);
  EXPECT_TRUE(check.has_tcp());
  EXPECT_EQ(KindName(check), "tcp");
}

TEST(CheckDefaultsTest, BoundsAndKindDefaults) {
  v1::HealthCheck check;
  check.mutable_interval()->set_nanos(10000000);  // 10ms: below the minimum
  check.mutable_timeout()->set_seconds(3);        // above the interval
  check.mutable_http();
  const v1::HealthCheck full = WithDefaults(check);
  EXPECT_EQ(Interval(full), absl::Milliseconds(100));
  EXPECT_EQ(Timeout(full), absl::Milliseconds(100));
  EXPECT_EQ(full.http().path(), "/");
  EXPECT_EQ(full.http().expected_status_min(), 200u);
  EXPECT_EQ(full.http().expected_status_max(), 399u);
  EXPECT_EQ(KindName(full), "http");

  v1::HealthCheck udp;
  udp.mutable_udp();
  EXPECT_EQ(WithDefaults(udp).udp().send(), "ping");
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(WithDefaults(full), full))
      << "idempotent";
}

}  // namespace
}  // namespace ferry::health
