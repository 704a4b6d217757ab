#include "health/timer_queue.h"

#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/mutex_lock.h"
#include "glog/logging.h"

namespace ferry::health {
namespace {

// ForLoop's registry: one shared queue per loop, held weakly so the last user frees it.
struct Registry {
  absl::Mutex mu;
  absl::flat_hash_map<const dataplane::EventLoop*, std::weak_ptr<TimerQueue>> queues
      ABSL_GUARDED_BY(mu);
};

Registry& SharedRegistry() {
  static Registry* registry = new Registry();
  return *registry;
}

}  // namespace

absl::Duration MonotonicNow() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return absl::DurationFromTimespec(ts);
}

absl::StatusOr<std::shared_ptr<TimerQueue>> TimerQueue::Create(dataplane::EventLoop& loop) {
  UniqueFd fd(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!fd) return absl::ErrnoToStatus(errno, "timer queue: timerfd_create failed");
  const int raw = fd.get();
  std::shared_ptr<TimerQueue> queue(new TimerQueue(loop, std::move(fd)));
  if (absl::Status added = loop.Add(raw, EPOLLIN, queue.get()); !added.ok()) {
    // The destructor's Remove is a no-op for an fd that was never added.
    return added;
  }
  return queue;
}

std::shared_ptr<TimerQueue> TimerQueue::ForLoop(dataplane::EventLoop& loop) {
  Registry& registry = SharedRegistry();
  MutexLock lock(&registry.mu);
  std::weak_ptr<TimerQueue>& slot = registry.queues[&loop];
  if (std::shared_ptr<TimerQueue> queue = slot.lock()) return queue;
  absl::StatusOr<std::shared_ptr<TimerQueue>> created = Create(loop);
  if (!created.ok()) {
    LOG(ERROR) << "no timer queue for probes: " << created.status();
    registry.queues.erase(&loop);
    return nullptr;
  }
  slot = *created;
  return *std::move(created);
}

TimerQueue::~TimerQueue() {
  loop_.Remove(fd_.get());
  Registry& registry = SharedRegistry();
  MutexLock lock(&registry.mu);
  auto it = registry.queues.find(&loop_);
  // Only our own (now expired) entry: a newer queue for the same loop may have replaced it.
  if (it != registry.queues.end() && it->second.expired()) registry.queues.erase(it);
}

TimerQueue::Id TimerQueue::Schedule(absl::Duration at, std::function<void()> fn) {
  const Id id = next_id_++;
  functions_.emplace(id, std::move(fn));
  heap_.push(Entry{at, id});
  if (at < armed_) Rearm();
  return id;
}

void TimerQueue::Cancel(Id id) {
  if (functions_.erase(id) == 0) return;
  Prune();
  // The timer may now fire for nothing; OnEvents then re-arms it. Cheaper than re-arming here.
}

void TimerQueue::Prune() {
  while (!heap_.empty() && !functions_.contains(heap_.top().id)) heap_.pop();
  if (heap_.size() > 64 && heap_.size() > 2 * functions_.size()) {
    std::vector<Entry> live;
    live.reserve(functions_.size());
    while (!heap_.empty()) {
      if (functions_.contains(heap_.top().id)) live.push_back(heap_.top());
      heap_.pop();
    }
    heap_ = std::priority_queue<Entry>(std::less<Entry>(), std::move(live));
  }
}

void TimerQueue::Rearm() {
  Prune();
  itimerspec spec = {};
  if (heap_.empty()) {
    armed_ = absl::InfiniteDuration();
  } else {
    armed_ = heap_.top().at;
    spec.it_value = absl::ToTimespec(armed_);
    // A zero it_value disarms: a deadline at the epoch itself still has to fire.
    if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;
  }
  if (timerfd_settime(fd_.get(), TFD_TIMER_ABSTIME, &spec, nullptr) != 0) {
    PLOG(ERROR) << "timer queue: timerfd_settime failed";
  }
}

void TimerQueue::OnEvents(uint32_t /*epoll_events*/) {
  // A function may drop the last reference to this queue; keep it alive until we are done.
  std::shared_ptr<TimerQueue> self = weak_from_this().lock();
  uint64_t expirations = 0;
  // Resets the expiration count (EAGAIN: a re-arm already did).
  (void)!read(fd_.get(), &expirations, sizeof(expirations));
  armed_ = absl::InfiniteDuration();
  const absl::Duration now = MonotonicNow();
  // Only what was due when this round started: functions that schedule at "now" run next round,
  // so a function rescheduling itself immediately cannot starve the loop.
  const Id last_id = next_id_ - 1;
  std::vector<Entry> later;
  while (!heap_.empty() && heap_.top().at <= now) {
    const Entry entry = heap_.top();
    heap_.pop();
    if (entry.id > last_id) {
      later.push_back(entry);
      continue;
    }
    auto it = functions_.find(entry.id);
    if (it == functions_.end()) continue;
    std::function<void()> fn = std::move(it->second);
    functions_.erase(it);
    fn();
  }
  for (const Entry& entry : later) heap_.push(entry);
  Rearm();
}

}  // namespace ferry::health
