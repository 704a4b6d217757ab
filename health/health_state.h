// HealthStateMachine: one target's health verdict from its stream of check results, with
// Envoy-style hysteresis so one flap does not move traffic.
//
//   UNKNOWN   --ok--> HEALTHY            --fail--> UNHEALTHY   (the first result decides)
//   HEALTHY   --`unhealthy_threshold` consecutive failures--> UNHEALTHY
//   UNHEALTHY --`healthy_threshold` consecutive successes--> HEALTHY
//
// A success resets the failure streak and a failure the success streak. Pure and
// single-threaded: the owner serializes calls.

#ifndef FERRY_HEALTH_HEALTH_STATE_H_
#define FERRY_HEALTH_HEALTH_STATE_H_

#include <cstdint>

#include "ferry/v1/common.pb.h"

namespace ferry::health {

class HealthStateMachine {
 public:
  // Thresholds of 0 count as 1.
  HealthStateMachine(uint32_t unhealthy_threshold, uint32_t healthy_threshold)
      : unhealthy_threshold_(unhealthy_threshold == 0 ? 1 : unhealthy_threshold),
        healthy_threshold_(healthy_threshold == 0 ? 1 : healthy_threshold) {}

  v1::HealthState state() const { return state_; }

  // Records one check result; returns true when it changed state().
  bool Advance(bool ok);

 private:
  const uint32_t unhealthy_threshold_;
  const uint32_t healthy_threshold_;
  v1::HealthState state_ = v1::HEALTH_STATE_UNKNOWN;
  uint32_t successes_ = 0;  // consecutive
  uint32_t failures_ = 0;   // consecutive
};

}  // namespace ferry::health

#endif  // FERRY_HEALTH_HEALTH_STATE_H_
