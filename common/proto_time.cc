#include "common/proto_time.h"

#include <cstdint>

namespace ferry {
namespace {

constexpr int64_t kNanosPerSecond = 1000000000;

}  // namespace

absl::Duration FromDurationProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

google::protobuf::Duration ToDurationProto(absl::Duration d) {
  const int64_t nanos = absl::ToInt64Nanoseconds(d);
  google::protobuf::Duration out;
  out.set_seconds(nanos / kNanosPerSecond);
  out.set_nanos(static_cast<int32_t>(nanos % kNanosPerSecond));
  return out;
}

absl::Time FromTimestampProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

google::protobuf::Timestamp ToTimestampProto(absl::Time t) {
  const int64_t nanos = absl::ToUnixNanos(t);
  // Timestamps keep nanos in [0, 1e9) also before 1970.
  int64_t seconds = nanos / kNanosPerSecond;
  int64_t rest = nanos % kNanosPerSecond;
  if (rest < 0) {
    rest += kNanosPerSecond;
    --seconds;
  }
  google::protobuf::Timestamp out;
  out.set_seconds(seconds);
  out.set_nanos(static_cast<int32_t>(rest));
  return out;
}

}  // namespace ferry
