// Conversions between protobuf's well-known time types and absl's, in one
// place. Exact to the nanosecond; a Duration or Timestamp outside absl's
// range saturates to absl's infinities.
#pragma once

#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"

namespace ferry {

absl::Duration FromDurationProto(const google::protobuf::Duration& d);
google::protobuf::Duration ToDurationProto(absl::Duration d);

absl::Time FromTimestampProto(const google::protobuf::Timestamp& t);
google::protobuf::Timestamp ToTimestampProto(absl::Time t);

}  // namespace ferry
