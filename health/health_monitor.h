// HealthMonitor: the connector's health checker. One thread, one EventLoop, any number of targets
// (backends), each checked on its own schedule by a Probe of its check's kind.
//
// No drift: a target's next check is due at its previous *scheduled* time + interval + a random
// jitter in [0, jitter], never "interval after the last one finished", so a busy loop delays a
// check but never shifts the schedule. All schedules live in one min-heap behind one timerfd
// (TimerQueue), and all probe I/O is non-blocking on the monitor's loop, so a thousand targets
// cost one thread. Only one probe per target is in flight: a check that comes due while the
// previous one still runs waits for it (counted as late) and then starts at once.
//
// Verdicts (HealthStateMachine, health_state.h):
//   UNKNOWN until the first result, which decides (success: HEALTHY, failure: UNHEALTHY);
//   HEALTHY -> UNHEALTHY after unhealthy_threshold consecutive failures;
//   UNHEALTHY -> HEALTHY after healthy_threshold consecutive successes.
// A probe that runs out of its timeout is a failure. Every state change (the first verdict
// included) is reported once through on_transition.

#ifndef FERRY_HEALTH_HEALTH_MONITOR_H_
#define FERRY_HEALTH_HEALTH_MONITOR_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "dataplane/event_loop.h"
#include "dataplane/socket_address.h"
#include "ferry/v1/common.pb.h"
#include "prometheus/registry.h"

namespace ferry::health {

struct HealthTarget {
  // The caller's id, unique among the targets (e.g. "tenant/service/10.0.0.1:80").
  std::string key;
  dataplane::SocketAddress address;
  // HTTP Host default, TLS SNI and gRPC authority; empty: the IP.
  std::string host;
  // Unset fields take their defaults (check_defaults.h); no kind set means tcp.
  v1::HealthCheck check;
};

struct HealthTransition {
  std::string key;
  v1::HealthState from, to;
  // The result that decided it: "ok", "connect: Connection refused", "timeout" ...
  std::string detail;
  absl::Time at;
};

class HealthMonitor {
 public:
  struct Options {
    // When set, adds <prefix>_health_checks_total{kind,result="ok|fail"},
    // <prefix>_health_transitions_total{kind,to="healthy|unhealthy"}, <prefix>_health_targets,
    // <prefix>_health_checks_late_total{kind} (checks that came due while the previous one of
    // the same target still ran) and <prefix>_health_check_lag_seconds (histogram: how long after
    // its scheduled time each check started — the "no drift" evidence). Must outlive the
    // monitor.
    prometheus::Registry* registry = nullptr;
    std::string metric_prefix = "ferry_connector";
  };

  // One target's counters, for tests, status pages and the bench.
  struct TargetStats {
    v1::HealthState state = v1::HEALTH_STATE_UNKNOWN;
    uint64_t checks = 0;     // probes started
    uint64_t successes = 0;  // probes finished ok
    uint64_t failures = 0;   // probes finished failed (timeouts included)
    uint64_t late = 0;       // checks that came due while the previous probe still ran
    std::string last_detail;
  };

  // Creates the loop and starts the monitor's thread, with no targets. on_transition runs on
  // the monitor's thread, must not block long, and may call SetTargets/States/Stats. Errors:
  // the loop's or timer's creation status (RESOURCE_EXHAUSTED when out of descriptors).
  static absl::StatusOr<std::unique_ptr<HealthMonitor>> Start(
      Options options, std::function<void(const HealthTransition&)> on_transition);

  // Cancels every probe, stops and joins the thread. No transition is reported during it. Not
  // from on_transition.
  ~HealthMonitor();

  HealthMonitor(const HealthMonitor&) = delete;
  HealthMonitor& operator=(const HealthMonitor&) = delete;

  // Replaces the set of targets (applied on the monitor's thread soon after). Any thread.
  // A target whose key, address, host and check (after defaults) are unchanged keeps its state,
  // streaks and schedule. A new or changed target starts UNKNOWN, with its first check at a
  // random point within min(interval, 1s) (spread, so a large set does not fire at once). A
  // removed target stops (its probe cancelled) without a transition. For a repeated key the last
  // entry counts.
  void SetTargets(std::vector<HealthTarget> targets);

  // The state of every current target (key -> state). Any thread. Targets of a SetTargets not yet
  // applied are not in it.
  std::map<std::string, v1::HealthState> States() const;

  // The counters of every current target. Any thread.
  std::map<std::string, TargetStats> Stats() const;

 private:
  class Scheduler;
  HealthMonitor() = default;

  std::unique_ptr<dataplane::EventLoop> loop_;
  std::unique_ptr<Scheduler> scheduler_;
  std::thread thread_;

  mutable absl::Mutex mu_;
  // Written by the Scheduler on the loop thread, read by States/Stats.
  std::map<std::string, TargetStats> stats_ ABSL_GUARDED_BY(mu_);
  friend class Scheduler;
};

}  // namespace ferry::health

#endif  // FERRY_HEALTH_HEALTH_MONITOR_H_
