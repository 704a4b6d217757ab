// The defaults and bounds of ferry.v1.HealthCheck (proto/ferry/v1/common.proto), applied in one
// place so the monitor and the probes agree on them.

#ifndef FERRY_HEALTH_CHECK_DEFAULTS_H_
#define FERRY_HEALTH_CHECK_DEFAULTS_H_

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ferry/v1/common.pb.h"

namespace ferry::health {

inline constexpr absl::Duration kDefaultInterval = absl::Seconds(5);
inline constexpr absl::Duration kMinInterval = absl::Milliseconds(100);
inline constexpr absl::Duration kDefaultTimeout = absl::Seconds(2);
inline constexpr uint32_t kDefaultUnhealthyThreshold = 3;
inline constexpr uint32_t kDefaultHealthyThreshold = 2;

// `check` with every unset field given its default: interval 5s (raised to 100ms when below),
// timeout 2s (lowered to the interval when above it), jitter 0 (negative: 0), thresholds 3 and 2,
// kind tcp when none is set, http path "/" and status 200..399 (an inverted range is kept: it
// admits nothing, which the probe reports), udp payload "ping". Idempotent.
v1::HealthCheck WithDefaults(const v1::HealthCheck& check);

// The durations of a check, read after WithDefaults.
absl::Duration Interval(const v1::HealthCheck& check);
absl::Duration Timeout(const v1::HealthCheck& check);
absl::Duration Jitter(const v1::HealthCheck& check);

// "tcp", "http", "udp", "icmp" or "grpc" (unset kind: "tcp"); the `kind` metric label.
absl::string_view KindName(const v1::HealthCheck& check);

}  // namespace ferry::health

#endif  // FERRY_HEALTH_CHECK_DEFAULTS_H_
