#include "health/health_monitor.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "common/metrics.h"
#include "common/mutex_lock.h"
#include "google/protobuf/util/message_differencer.h"
#include "health/check_defaults.h"
#include "health/health_state.h"
#include "health/probe.h"
#include "health/timer_queue.h"

namespace ferry::health {
namespace {

const char* StateLabel(v1::HealthState state) {
  return state == v1::HEALTH_STATE_HEALTHY ? "healthy" : "unhealthy";
}

}  // namespace

// Everything that runs on the loop thread: targets, their schedules and probes, and metrics.
class HealthMonitor::Scheduler {
 public:
  Scheduler(HealthMonitor& owner, dataplane::EventLoop& loop, std::shared_ptr<TimerQueue> timers,
            const Options& options, std::function<void(const HealthTransition&)> on_transition)
      : owner_(owner),
        loop_(loop),
        timers_(std::move(timers)),
        on_transition_(std::move(on_transition)) {
    if (options.registry == nullptr) return;
    prometheus::Registry& registry = *options.registry;
    const std::string& prefix = options.metric_prefix;
    checks_ = &AddCounterFamily(registry, prefix + "_health_checks_total",
                                "Health check probes finished, by kind and result.");
    transitions_ = &AddCounterFamily(registry, prefix + "_health_transitions_total",
                                     "Health state changes of targets, by kind and new state.");
    late_ = &AddCounterFamily(
        registry, prefix + "_health_checks_late_total",
        "Checks that came due while the previous probe of the same target still ran.");
    targets_gauge_ =
        &AddGaugeFamily(registry, prefix + "_health_targets", "Targets being health checked.")
             .Add({});
    lag_ = &AddLatencyHistogram(
        AddHistogramFamily(registry, prefix + "_health_check_lag_seconds",
                           "How long after its scheduled time each health check started."));
  }

  ~Scheduler() { Clear(); }

  // Applies a SetTargets.
  void Apply(std::vector<HealthTarget> incoming) {
    absl::flat_hash_map<std::string, std::unique_ptr<Target>> next;
    absl::flat_hash_set<std::string> kept;
    const absl::Duration now = MonotonicNow();
    for (HealthTarget& spec : incoming) {
      spec.check = WithDefaults(spec.check);
      auto old = targets_.find(spec.key);
      if (old != targets_.end() && Same(old->second->spec, spec)) {
        kept.insert(spec.key);
        next[spec.key] = std::move(old->second);
        targets_.erase(old);
        continue;
      }
      kept.erase(spec.key);  // a repeated key: the last entry counts, as a new target
      auto target = std::make_unique<Target>(std::move(spec), this);
      const absl::Duration spread = std::min(target->interval, absl::Seconds(1));
      target->scheduled =
          now + absl::Nanoseconds(absl::Uniform<int64_t>(random_, 0, ToInt64Nanoseconds(spread)));
      Arm(*target);
      next[target->spec.key] = std::move(target);
    }
    targets_.swap(next);
    next.clear();  // the removed ones: timers cancelled, probes cancelled
    {
      MutexLock lock(&owner_.mu_);
      std::map<std::string, TargetStats> stats;
      for (const auto& [key, target] : targets_) {
        auto it = owner_.stats_.find(key);
        // A changed target starts over (UNKNOWN, counters zero) like a new one.
        stats[key] = kept.contains(key) && it != owner_.stats_.end() ? it->second : TargetStats();
      }
      owner_.stats_.swap(stats);
    }
    if (targets_gauge_ != nullptr) targets_gauge_->Set(static_cast<double>(targets_.size()));
  }

  // Drops every target (their probes and timers). Loop thread, or after the loop stopped.
  void Clear() { targets_.clear(); }

 private:
  struct Target {
    Target(HealthTarget s, Scheduler* scheduler)
        : spec(std::move(s)),
          kind(KindName(spec.check)),
          interval(Interval(spec.check)),
          timeout(Timeout(spec.check)),
          jitter(Jitter(spec.check)),
          machine(spec.check.unhealthy_threshold(), spec.check.healthy_threshold()),
          keep_alive(Probe::KeepAlive(spec.check, spec.address, spec.host)),
          timers(scheduler->timers_) {}
    ~Target() {
      timers->Cancel(timer);
      probe.reset();
    }

    const HealthTarget spec;
    const std::string kind;
    const absl::Duration interval, timeout, jitter;
    HealthStateMachine machine;
    const std::shared_ptr<void> keep_alive;  // e.g. the gRPC channel, reused across checks
    const std::shared_ptr<TimerQueue> timers;
    absl::Duration scheduled;  // when the next check is due (monotonic)
    TimerQueue::Id timer = 0;
    std::unique_ptr<Probe> probe;
    bool overdue = false;  // came due while `probe` ran
    uint64_t checks_started = 0;
  };

  static bool Same(const HealthTarget& a, const HealthTarget& b) {
    return a.address == b.address && a.host == b.host &&
           google::protobuf::util::MessageDifferencer::Equals(a.check, b.check);
  }

  void Arm(Target& target) {
    Target* const t = &target;
    target.timer = timers_->Schedule(target.scheduled, [this, t] { OnDue(*t); });
  }

  void OnDue(Target& target) {
    target.timer = 0;
    if (target.probe != nullptr) {
      target.overdue = true;
      if (late_ != nullptr) late_->Add({{"kind", target.kind}}).Increment();
      MutexLock lock(&owner_.mu_);
      ++owner_.stats_[target.spec.key].late;
      return;
    }
    StartCheck(target);
  }

  void StartCheck(Target& target) {
    const absl::Duration now = MonotonicNow();
    if (lag_ != nullptr) {
      lag_->Observe(absl::ToDoubleSeconds(std::max(now - target.scheduled, absl::ZeroDuration())));
    }
    // The next one is due one interval (plus jitter) after this one was *due*, not after now.
    absl::Duration jitter = absl::ZeroDuration();
    if (target.jitter > absl::ZeroDuration()) {
      jitter = absl::Nanoseconds(absl::Uniform<int64_t>(absl::IntervalClosed, random_, 0,
                                                        ToInt64Nanoseconds(target.jitter)));
    }
    target.scheduled += target.interval + jitter;
    Arm(target);
    ++target.checks_started;
    {
      MutexLock lock(&owner_.mu_);
      ++owner_.stats_[target.spec.key].checks;
    }
    Target* const t = &target;
    target.probe = Probe::Start(loop_, target.spec.check, target.spec.address, target.spec.host,
                                target.timeout,
                                [this, t](ProbeResult result) { OnResult(*t, std::move(result)); });
  }

  void OnResult(Target& target, ProbeResult result) {
    // Destroyed when this returns (a probe may be destroyed from its own `done`).
    std::unique_ptr<Probe> finished = std::move(target.probe);
    if (checks_ != nullptr) {
      checks_->Add({{"kind", target.kind}, {"result", result.ok ? "ok" : "fail"}}).Increment();
    }
    const v1::HealthState from = target.machine.state();
    const bool changed = target.machine.Advance(result.ok);
    {
      MutexLock lock(&owner_.mu_);
      TargetStats& stats = owner_.stats_[target.spec.key];
      ++(result.ok ? stats.successes : stats.failures);
      stats.state = target.machine.state();
      stats.last_detail = result.detail;
    }
    if (changed) {
      if (transitions_ != nullptr) {
        transitions_->Add({{"kind", target.kind}, {"to", StateLabel(target.machine.state())}})
            .Increment();
      }
      if (on_transition_) {
        on_transition_(HealthTransition{target.spec.key, from, target.machine.state(),
                                        result.detail, absl::Now()});
      }
    }
    if (target.overdue) {
      target.overdue = false;
      timers_->Cancel(target.timer);  // StartCheck arms the next one
      StartCheck(target);
    }
  }

  static int64_t ToInt64Nanoseconds(absl::Duration d) { return absl::ToInt64Nanoseconds(d); }

  HealthMonitor& owner_;
  dataplane::EventLoop& loop_;
  const std::shared_ptr<TimerQueue> timers_;
  const std::function<void(const HealthTransition&)> on_transition_;
  absl::flat_hash_map<std::string, std::unique_ptr<Target>> targets_;
  absl::BitGen random_;

  prometheus::Family<prometheus::Counter>* checks_ = nullptr;
  prometheus::Family<prometheus::Counter>* transitions_ = nullptr;
  prometheus::Family<prometheus::Counter>* late_ = nullptr;
  prometheus::Gauge* targets_gauge_ = nullptr;
  prometheus::Histogram* lag_ = nullptr;
};

absl::StatusOr<std::unique_ptr<HealthMonitor>> HealthMonitor::Start(
    Options options, std::function<void(const HealthTransition&)> on_transition) {
  std::unique_ptr<HealthMonitor> monitor(new HealthMonitor());
  absl::StatusOr<std::unique_ptr<dataplane::EventLoop>> loop = dataplane::EventLoop::Create();
  if (!loop.ok()) return loop.status();
  monitor->loop_ = *std::move(loop);
  // The loop's shared queue: the probes' timeouts land on the same timerfd as the schedules.
  std::shared_ptr<TimerQueue> timers = TimerQueue::ForLoop(*monitor->loop_);
  if (timers == nullptr) {
    return absl::ResourceExhaustedError(
        "health monitor: cannot create its timer (out of file descriptors?)");
  }
  monitor->scheduler_ = std::make_unique<Scheduler>(*monitor, *monitor->loop_, std::move(timers),
                                                    options, std::move(on_transition));
  dataplane::EventLoop* const loop_ptr = monitor->loop_.get();
  monitor->thread_ = std::thread([loop_ptr] { loop_ptr->Run(); });
  return monitor;
}

HealthMonitor::~HealthMonitor() {
  Scheduler* const scheduler = scheduler_.get();
  dataplane::EventLoop* const loop = loop_.get();
  // Probes are cancelled on the loop thread, then the loop stops: nothing runs after.
  loop->Post([scheduler, loop] {
    scheduler->Clear();
    loop->Stop();
  });
  thread_.join();
  scheduler_.reset();
  loop_.reset();
}

void HealthMonitor::SetTargets(std::vector<HealthTarget> targets) {
  Scheduler* const scheduler = scheduler_.get();
  loop_->Post([scheduler, targets = std::move(targets)]() mutable {
    scheduler->Apply(std::move(targets));
  });
}

std::map<std::string, v1::HealthState> HealthMonitor::States() const {
  MutexLock lock(&mu_);
  std::map<std::string, v1::HealthState> states;
  for (const auto& [key, stats] : stats_) states.emplace(key, stats.state);
  return states;
}

std::map<std::string, HealthMonitor::TargetStats> HealthMonitor::Stats() const {
  MutexLock lock(&mu_);
  return stats_;
}

}  // namespace ferry::health
