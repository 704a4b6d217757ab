#include "health/check_defaults.h"

#include <algorithm>

#include "common/proto_time.h"

namespace ferry::health {
namespace {}  // namespace

v1::HealthCheck WithDefaults(const v1::HealthCheck& check) {
  v1::HealthCheck out = check;
  absl::Duration interval =
      check.has_interval() ? FromDurationProto(check.interval()) : kDefaultInterval;
  if (interval <= absl::ZeroDuration()) interval = kDefaultInterval;
  interval = std::max(interval, kMinInterval);
  absl::Duration timeout =
      check.has_timeout() ? FromDurationProto(check.timeout()) : kDefaultTimeout;
  if (timeout <= absl::ZeroDuration()) timeout = kDefaultTimeout;
  timeout = std::min(timeout, interval);
  const absl::Duration jitter =
      std::max(check.has_jitter() ? FromDurationProto(check.jitter()) : absl::ZeroDuration(),
               absl::ZeroDuration());
  *out.mutable_interval() = ToDurationProto(interval);
  *out.mutable_timeout() = ToDurationProto(timeout);
  *out.mutable_jitter() = ToDurationProto(jitter);
  if (out.unhealthy_threshold() == 0) out.set_unhealthy_threshold(kDefaultUnhealthyThreshold);
  if (out.healthy_threshold() == 0) out.set_healthy_threshold(kDefaultHealthyThreshold);
  switch (out.kind_case()) {
    case v1::HealthCheck::KIND_NOT_SET:
      out.mutable_tcp();
      break;
    case v1::HealthCheck::kHttp: {
      v1::HealthCheck::Http* http = out.mutable_http();
      if (http->path().empty()) http->set_path("/");
      if (http->expected_status_min() == 0) http->set_expected_status_min(200);
      if (http->expected_status_max() == 0) http->set_expected_status_max(399);
      break;
    }
    case v1::HealthCheck::kUdp:
      if (out.udp().send().empty()) out.mutable_udp()->set_send("ping");
      break;
    default:
      break;
  }
  return out;
}

absl::Duration Interval(const v1::HealthCheck& check) {
  return FromDurationProto(check.interval());
}
absl::Duration Timeout(const v1::HealthCheck& check) { return FromDurationProto(check.timeout()); }
absl::Duration Jitter(const v1::HealthCheck& check) { return FromDurationProto(check.jitter()); }

absl::string_view KindName(const v1::HealthCheck& check) {
  switch (check.kind_case()) {
    case v1::HealthCheck::kHttp:
      return "http";
    case v1::HealthCheck::kUdp:
      return "udp";
    case v1::HealthCheck::kIcmp:
      return "icmp";
    case v1::HealthCheck::kGrpc:
      return "grpc";
    default:
      return "tcp";
  }
}

}  // namespace ferry::health
