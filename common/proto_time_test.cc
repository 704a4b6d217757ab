#include "common/proto_time.h"

#include "gtest/gtest.h"

namespace ferry {
namespace {

TEST(ProtoTimeTest, DurationsRoundTripToTheNanosecond) {
  for (absl::Duration d : {absl::ZeroDuration(), absl::Milliseconds(250), absl::Seconds(5),
                           absl::Seconds(3) + absl::Nanoseconds(7), -absl::Milliseconds(1250)}) {
    EXPECT_EQ(FromDurationProto(ToDurationProto(d)), d) << d;
  }
  google::protobuf::Duration proto;
  proto.set_seconds(2);
  proto.set_nanos(500000000);
  EXPECT_EQ(FromDurationProto(proto), absl::Milliseconds(2500));
  EXPECT_EQ(ToDurationProto(-absl::Milliseconds(1250)).seconds(), -1);
  EXPECT_EQ(ToDurationProto(-absl::Milliseconds(1250)).nanos(), -250000000);
}

TEST(ProtoTimeTest, TimestampsRoundTripAndKeepNanosPositive) {
  const absl::Time t = absl::FromUnixSeconds(1700000000) + absl::Nanoseconds(123456789);
  EXPECT_EQ(FromTimestampProto(ToTimestampProto(t)), t);
  EXPECT_EQ(ToTimestampProto(t).seconds(), 1700000000);
  EXPECT_EQ(ToTimestampProto(t).nanos(), 123456789);
  const absl::Time before_epoch = absl::UnixEpoch() - absl::Milliseconds(1);
  EXPECT_EQ(ToTimestampProto(before_epoch).seconds(), -1);
  EXPECT_EQ(ToTimestampProto(before_epoch).nanos(), 999000000);
  EXPECT_EQ(FromTimestampProto(ToTimestampProto(before_epoch)), before_epoch);
}

}  // namespace
}  // namespace ferry
