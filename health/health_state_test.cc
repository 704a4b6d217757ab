#include "health/health_state.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace ferry::health {
namespace {

constexpr v1::HealthState U = v1::HEALTH_STATE_UNKNOWN;
constexpr v1::HealthState H = v1::HEALTH_STATE_HEALTHY;
constexpr v1::HealthState X = v1::HEALTH_STATE_UNHEALTHY;

struct Case {
  const char* name;
  uint32_t unhealthy_threshold, healthy_threshold;
  std::string results;                  // '+' success, '-' failure
  std::vector<v1::HealthState> states;  // after each result
};

TEST(HealthStateMachineTest, Hysteresis) {
  const Case cases[] = {
      {"first success decides", 3, 2, "+", {H}},
      {"first failure decides", 3, 2, "-", {X}},
      {"two failures keep healthy", 3, 2, "+--", {H, H, H}},
      {"three failures take it out", 3, 2, "+---", {H, H, H, X}},
      {"a success resets the failure streak", 3, 2, "+--+--", {H, H, H, H, H, H}},
      {"one success keeps unhealthy", 3, 2, "-+", {X, X}},
      {"two successes bring it back", 3, 2, "-++", {X, X, H}},
      {"a failure resets the success streak", 3, 2, "-+-+", {X, X, X, X}},
      {"flapping never moves it", 3, 2, "+-+-+-+-", {H, H, H, H, H, H, H, H}},
      {"thresholds of one follow every result", 1, 1, "+-+-", {H, X, H, X}},
      {"zero thresholds act as one", 0, 0, "+-", {H, X}},
      {"streak starts fresh after a transition", 2, 2, "+--+-", {H, H, X, X, X}},
  };
  for (const Case& c : cases) {
    HealthStateMachine machine(c.unhealthy_threshold, c.healthy_threshold);
    EXPECT_EQ(machine.state(), U) << c.name;
    ASSERT_EQ(c.results.size(), c.states.size()) << c.name;
    for (size_t i = 0; i < c.results.size(); ++i) {
      const v1::HealthState before = machine.state();
      const bool changed = machine.Advance(c.results[i] == '+');
      EXPECT_EQ(machine.state(), c.states[i]) << c.name << " after result " << i;
      EXPECT_EQ(changed, before != c.states[i]) << c.name << " after result " << i;
    }
  }
}

}  // namespace
}  // namespace ferry::health
