#include "health/health_state.h"

namespace ferry::health {

bool HealthStateMachine::Advance(bool ok) {
  if (ok) {
    ++successes_;
    failures_ = 0;
  } else {
    ++failures_;
    successes_ = 0;
  }
  v1::HealthState next = state_;
  switch (state_) {
    case v1::HEALTH_STATE_HEALTHY:
      if (failures_ >= unhealthy_threshold_) next = v1::HEALTH_STATE_UNHEALTHY;
      break;
    case v1::HEALTH_STATE_UNHEALTHY:
      if (successes_ >= healthy_threshold_) next = v1::HEALTH_STATE_HEALTHY;
      break;
    default:  // UNKNOWN: the first verdict decides
      next = ok ? v1::HEALTH_STATE_HEALTHY : v1::HEALTH_STATE_UNHEALTHY;
      break;
  }
  if (next == state_) return false;
  state_ = next;
  successes_ = failures_ = 0;
  return true;
}

}  // namespace ferry::health
