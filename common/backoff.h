// Jittered exponential backoff for reconnect loops: each failure doubles the
// delay up to a cap, and each delay is drawn uniformly from [d/2, d] so that
// many clients restarting together do not reconnect in lock-step.
#pragma once

#include <random>

#include "absl/time/time.h"

namespace ferry {

class Backoff {
 public:
  Backoff(absl::Duration initial, absl::Duration max)
      : initial_(initial), max_(max), next_(initial) {}

  // The delay before the next attempt; grows the one after it.
  absl::Duration Next() {
    const absl::Duration current = next_;
    next_ = std::min(next_ * 2, max_);
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    return current * jitter(rng_);
  }
  // Call after a success.
  void Reset() { next_ = initial_; }

 private:
  const absl::Duration initial_;
  const absl::Duration max_;
  absl::Duration next_;
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace ferry
