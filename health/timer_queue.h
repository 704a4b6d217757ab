// TimerQueue: any number of one-shot deadlines on one EventLoop through a single timerfd.
//
// EventLoop::AddTimer makes one timerfd per timer, which does not scale to a deadline per health
// check target (and per probe timeout) on one thread. TimerQueue keeps its own min-heap of
// deadlines on the monotonic clock and re-arms one timerfd (absolute time) to the earliest one,
// so a thousand targets cost one fd and O(log n) per deadline.
//
// Loop thread only (or before the loop runs), including destruction.

#ifndef FERRY_HEALTH_TIMER_QUEUE_H_
#define FERRY_HEALTH_TIMER_QUEUE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <queue>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"
#include "dataplane/event_loop.h"

namespace ferry::health {

// Time on CLOCK_MONOTONIC, as the duration since that clock's (arbitrary) epoch. Immune to wall
// clock steps, so schedules built on it never drift or jump.
absl::Duration MonotonicNow();

class TimerQueue final : public dataplane::EventLoop::Handler,
                         public std::enable_shared_from_this<TimerQueue> {
 public:
  using Id = uint64_t;

  // A queue with its timerfd registered on `loop` (which must outlive it), or the errno status
  // of timerfd_create / the loop's Add (EMFILE: out of descriptors).
  static absl::StatusOr<std::shared_ptr<TimerQueue>> Create(dataplane::EventLoop& loop);

  // The queue shared by everything on `loop` that asks for it (probes' timeouts): created on
  // first use and destroyed with its last holder. nullptr when it cannot be created (logged).
  // Loop thread only.
  static std::shared_ptr<TimerQueue> ForLoop(dataplane::EventLoop& loop);

  // Removes the timerfd from the loop and closes it; pending functions are destroyed unrun.
  ~TimerQueue() override;

  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  // Runs `fn` once on the loop thread at monotonic time `at` (MonotonicNow() based), or in the
  // next loop round when `at` has passed. Functions due together run in deadline order (ties:
  // scheduling order). `fn` may schedule, cancel, and destroy what it likes, the queue included.
  // Returns an id for Cancel, never 0.
  Id Schedule(absl::Duration at, std::function<void()> fn);

  // Forgets `id`: its function does not run and is destroyed now. A no-op for 0, an unknown id,
  // or one that already ran (or is running).
  void Cancel(Id id);

  // Deadlines scheduled and not yet run or cancelled.
  size_t size() const { return functions_.size(); }

  void OnEvents(uint32_t epoll_events) override;

 private:
  struct Entry {
    absl::Duration at;
    Id id;
    // Min-heap on (at, id): std::priority_queue keeps the greatest on top.
    bool operator<(const Entry& other) const {
      return at != other.at ? at > other.at : id > other.id;
    }
  };

  TimerQueue(dataplane::EventLoop& loop, UniqueFd fd) : loop_(loop), fd_(std::move(fd)) {}
  // Points the timerfd at the earliest live deadline (or disarms it).
  void Rearm();
  // Drops cancelled entries from the top of the heap, and rebuilds the heap when cancelled
  // entries outnumber live ones (so cancel-heavy use, like probe timeouts, stays bounded).
  void Prune();

  dataplane::EventLoop& loop_;
  const UniqueFd fd_;
  std::priority_queue<Entry> heap_;
  absl::flat_hash_map<Id, std::function<void()>> functions_;
  Id next_id_ = 1;
  // The deadline the timerfd is armed for; InfiniteDuration when disarmed.
  absl::Duration armed_ = absl::InfiniteDuration();
};

}  // namespace ferry::health

#endif  // FERRY_HEALTH_TIMER_QUEUE_H_
