// EventLoop: the single-threaded epoll loop each data-plane worker runs.
//
// A worker owns one loop and one thread. Its sockets, timers and the control plane's hand-offs
// (route tables, session keys) all arrive as callbacks on that thread, so worker state needs no
// lock. Dispatching an event neither allocates nor locks: epoll's data word holds a slot index and
// a generation, and a slot cleared by Remove (or reused by a later Add) drops the events epoll
// already returned for it in the same round.
//
// Only Post and Stop may be called from other threads; everything else belongs to the loop's
// thread, or to whoever owns the loop before Run starts.

#ifndef FERRY_DATAPLANE_EVENT_LOOP_H_
#define FERRY_DATAPLANE_EVENT_LOOP_H_

#include <sys/epoll.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"

namespace ferry::dataplane {

class EventLoop {
 public:
  // Something with a file descriptor in the loop.
  class Handler {
   public:
    virtual ~Handler() = default;
    // Called on the loop thread with the epoll events (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP ...)
    // that fired for the handler's fd. May Add, Modify and Remove any fd, its own included, and
    // may delete itself after removing its fd.
    virtual void OnEvents(uint32_t epoll_events) = 0;
  };

  // Most events one epoll_wait round returns; more ready fds wait for the next round.
  static constexpr int kMaxEventsPerRound = 256;

  // A loop with its epoll instance and wake-up eventfd, or the errno status of the call that
  // failed, named in the message (EMFILE: RESOURCE_EXHAUSTED, out of descriptors).
  static absl::StatusOr<std::unique_ptr<EventLoop>> Create();

  // Does not close the fds handlers registered (they belong to their owners); closes the loop's
  // own epoll, eventfd and timer fds. Posted functions that never ran are destroyed unrun.
  // Must not run while Run does.
  ~EventLoop();

  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Watches `fd` for `events` (EPOLLIN, EPOLLOUT, EPOLLET ...) and calls `handler` when they fire.
  // Loop thread only (or before Run). `handler` must outlive its registration; the loop does not
  // own it, nor `fd`. Remove the fd before closing it. Returns ALREADY_EXISTS when `fd` is already
  // registered, INVALID_ARGUMENT for a negative fd or a null handler, else epoll_ctl's errno
  // status (EBADF, EPERM for a regular file, ENOSPC ...).
  absl::Status Add(int fd, uint32_t events, Handler* handler);

  // Changes the events and handler of a registered `fd`. Events epoll already returned for `fd`
  // in the current round go to the new handler. Loop thread only (or before Run). Returns
  // NOT_FOUND for an fd that is not registered, INVALID_ARGUMENT for a null handler, else
  // epoll_ctl's errno status.
  absl::Status Modify(int fd, uint32_t events, Handler* handler);

  // Stops watching `fd`: its handler is not called again, not even for events already returned
  // in the current round. A no-op for an fd that is not registered. Loop thread only (or before
  // Run).
  void Remove(int fd);

  // Calls `fn` on the loop thread every `period` (a timerfd; the first call one period from now).
  // Expirations missed while the loop was busy are coalesced into one call. `period` must be
  // positive. Returns an id for CancelTimer (never 0), or 0 when the timer could not be created
  // (out of descriptors; logged). Loop thread only (or before Run).
  uint64_t AddTimer(absl::Duration period, std::function<void()> fn);

  // Stops the timer `id`: `fn` is not called again and is destroyed at the end of the current
  // round (so a timer may cancel itself from inside its own `fn`). A no-op for an unknown or
  // already cancelled id, and for 0. Loop thread only (or before Run).
  void CancelTimer(uint64_t id);

  // Runs `fn` on the loop thread soon, in the order of Post calls. Any thread. This is the
  // control path (a mutex-protected queue and an eventfd wake-up), not the per-packet path. `fn`
  // should not capture an owner that may be destroyed before the loop runs it.
  void Post(std::function<void()> fn);

  // Calls `fn` on the loop thread after each epoll_wait round's events were all handled (and the
  // posted functions of that round ran): the "between batches" point where workers flush send
  // batches and swap route tables. Replaces an earlier hook; an empty `fn` removes it. Loop
  // thread only (or before Run).
  void SetAfterEvents(std::function<void()> fn);

  // Waits for and dispatches events until Stop(). Loop thread (the thread calling Run becomes it).
  // Returns at once when Stop was already called.
  void Run();

  // Makes Run return after its current round (or at once, if it has not started). Any thread.
  // Idempotent, and final: a stopped loop does not run again.
  void Stop();

 private:
  // One registration. The generation changes each time the slot is cleared, so that epoll events
  // carrying an old generation are dropped.
  struct Slot {
    Handler* handler = nullptr;
    int fd = -1;
    uint32_t generation = 0;
  };

  class Timer;
  class Wakeup;

  EventLoop(UniqueFd epoll_fd, UniqueFd wake_fd);

  static uint64_t EventData(uint32_t slot, uint32_t generation) {
    return (uint64_t{generation} << 32) | slot;
  }
  // Handles the wake-up eventfd: runs posted functions.
  void RunPosted();
  void Wake();
  // One epoll_wait round: dispatch, then the after-events hook.
  void RunRound();

  const UniqueFd epoll_fd_;
  const UniqueFd wake_fd_;
  std::unique_ptr<Wakeup> wakeup_;

  std::vector<Slot> slots_;
  std::vector<uint32_t> free_slots_;
  absl::flat_hash_map<int, uint32_t> slot_of_fd_;
  std::array<epoll_event, kMaxEventsPerRound> events_;

  uint64_t next_timer_id_ = 1;
  absl::flat_hash_map<uint64_t, std::unique_ptr<Timer>> timers_;
  // Cancelled timers, destroyed at the end of the round (one may be running its own `fn`).
  std::vector<std::unique_ptr<Timer>> cancelled_timers_;

  std::function<void()> after_events_;

  absl::Mutex mu_;
  std::vector<std::function<void()>> posted_ ABSL_GUARDED_BY(mu_);
  // The loop thread's copy of `posted_` while it runs them; kept to reuse its storage.
  std::vector<std::function<void()>> running_;

  std::atomic<bool> stopped_{false};
};

}  // namespace ferry::dataplane

#endif  // FERRY_DATAPLANE_EVENT_LOOP_H_
