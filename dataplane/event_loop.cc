#include "dataplane/event_loop.h"

#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/mutex_lock.h"
#include "glog/logging.h"

namespace ferry::dataplane {

// A periodic timerfd and the function it calls.
class EventLoop::Timer final : public Handler {
 public:
  Timer(UniqueFd fd, std::function<void()> fn) : fd_(std::move(fd)), fn_(std::move(fn)) {}

  int fd() const { return fd_.get(); }

  void OnEvents(uint32_t /*epoll_events*/) override {
    uint64_t expirations = 0;
    // Resets the expiration count; EAGAIN means another wake-up consumed it already.
    if (read(fd_.get(), &expirations, sizeof(expirations)) != sizeof(expirations)) return;
    fn_();
  }

 private:
  const UniqueFd fd_;
  const std::function<void()> fn_;
};

// The eventfd that Post and Stop write to wake the loop.
class EventLoop::Wakeup final : public Handler {
 public:
  explicit Wakeup(EventLoop* loop) : loop_(loop) {}
  void OnEvents(uint32_t /*epoll_events*/) override { loop_->RunPosted(); }

 private:
  EventLoop* const loop_;
};

absl::StatusOr<std::unique_ptr<EventLoop>> EventLoop::Create() {
  UniqueFd epoll_fd(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_fd) return absl::ErrnoToStatus(errno, "event loop: epoll_create1 failed");
  UniqueFd wake_fd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake_fd) return absl::ErrnoToStatus(errno, "event loop: eventfd failed");
  std::unique_ptr<EventLoop> loop(new EventLoop(std::move(epoll_fd), std::move(wake_fd)));
  if (absl::Status added = loop->Add(loop->wake_fd_.get(), EPOLLIN, loop->wakeup_.get());
      !added.ok()) {
    return added;
  }
  return loop;
}

EventLoop::EventLoop(UniqueFd epoll_fd, UniqueFd wake_fd)
    : epoll_fd_(std::move(epoll_fd)),
      wake_fd_(std::move(wake_fd)),
      wakeup_(std::make_unique<Wakeup>(this)) {}

EventLoop::~EventLoop() = default;

absl::Status EventLoop::Add(int fd, uint32_t events, Handler* handler) {
  if (fd < 0) return absl::InvalidArgumentError(absl::StrCat("event loop: cannot add fd ", fd));
  if (handler == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("event loop: fd ", fd, " has a null handler"));
  }
  if (slot_of_fd_.contains(fd)) {
    return absl::AlreadyExistsError(absl::StrCat("event loop: fd ", fd, " is already registered"));
  }
  uint32_t index;
  if (free_slots_.empty()) {
    index = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  } else {
    index = free_slots_.back();
    free_slots_.pop_back();
  }
  Slot& slot = slots_[index];
  epoll_event event{};
  event.events = events;
  event.data.u64 = EventData(index, slot.generation);
  if (epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, fd, &event) != 0) {
    const int error = errno;
    free_slots_.push_back(index);
    return absl::ErrnoToStatus(error, absl::StrCat("event loop: epoll_ctl(ADD) of fd ", fd));
  }
  slot.handler = handler;
  slot.fd = fd;
  slot_of_fd_.emplace(fd, index);
  return absl::OkStatus();
}

absl::Status EventLoop::Modify(int fd, uint32_t events, Handler* handler) {
  if (handler == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("event loop: fd ", fd, " has a null handler"));
  }
  const auto it = slot_of_fd_.find(fd);
  if (it == slot_of_fd_.end()) {
    return absl::NotFoundError(absl::StrCat("event loop: fd ", fd, " is not registered"));
  }
  Slot& slot = slots_[it->second];
  epoll_event event{};
  event.events = events;
  event.data.u64 = EventData(it->second, slot.generation);
  if (epoll_ctl(epoll_fd_.get(), EPOLL_CTL_MOD, fd, &event) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("event loop: epoll_ctl(MOD) of fd ", fd));
  }
  slot.handler = handler;
  return absl::OkStatus();
}

void EventLoop::Remove(int fd) {
  const auto it = slot_of_fd_.find(fd);
  if (it == slot_of_fd_.end()) return;
  const uint32_t index = it->second;
  slot_of_fd_.erase(it);
  // Fails only when the fd was closed before Remove (epoll dropped it already): nothing to undo.
  epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, fd, nullptr);
  Slot& slot = slots_[index];
  slot.handler = nullptr;
  slot.fd = -1;
  ++slot.generation;
  free_slots_.push_back(index);
}

uint64_t EventLoop::AddTimer(absl::Duration period, std::function<void()> fn) {
  CHECK(period > absl::ZeroDuration()) << "EventLoop::AddTimer needs a positive period";
  UniqueFd fd(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!fd) {
    PLOG(ERROR) << "event loop: timerfd_create failed; the timer does not run";
    return 0;
  }
  itimerspec spec{};
  spec.it_interval = absl::ToTimespec(period);
  spec.it_value = spec.it_interval;
  if (timerfd_settime(fd.get(), 0, &spec, nullptr) != 0) {
    PLOG(ERROR) << "event loop: timerfd_settime failed; the timer does not run";
    return 0;
  }
  auto timer = std::make_unique<Timer>(std::move(fd), std::move(fn));
  if (absl::Status added = Add(timer->fd(), EPOLLIN, timer.get()); !added.ok()) {
    LOG(ERROR) << added << "; the timer does not run";
    return 0;
  }
  const uint64_t id = next_timer_id_++;
  timers_.emplace(id, std::move(timer));
  return id;
}

void EventLoop::CancelTimer(uint64_t id) {
  const auto it = timers_.find(id);
  if (it == timers_.end()) return;
  Remove(it->second->fd());
  cancelled_timers_.push_back(std::move(it->second));
  timers_.erase(it);
}

void EventLoop::Post(std::function<void()> fn) {
  {
    MutexLock lock(&mu_);
    posted_.push_back(std::move(fn));
  }
  Wake();
}

void EventLoop::SetAfterEvents(std::function<void()> fn) { after_events_ = std::move(fn); }

void EventLoop::Wake() {
  const uint64_t one = 1;
  // EAGAIN means the counter is saturated: the loop is woken anyway.
  if (write(wake_fd_.get(), &one, sizeof(one)) < 0 && errno != EAGAIN) {
    PLOG(ERROR) << "event loop: cannot write the wake-up eventfd";
  }
}

void EventLoop::RunPosted() {
  uint64_t count = 0;
  // Resets the counter before taking the queue, so a Post racing with this is not lost: it
  // either lands in the batch taken below or writes the eventfd again.
  if (read(wake_fd_.get(), &count, sizeof(count)) < 0 && errno != EAGAIN) {
    PLOG(ERROR) << "event loop: cannot read the wake-up eventfd";
  }
  {
    MutexLock lock(&mu_);
    running_.swap(posted_);
  }
  // The whole batch runs even when one of them calls Stop(): each was promised a run.
  for (std::function<void()>& fn : running_) fn();
  running_.clear();
}

void EventLoop::RunRound() {
  const int ready = epoll_wait(epoll_fd_.get(), events_.data(), kMaxEventsPerRound, -1);
  if (ready < 0) {
    if (errno != EINTR) PLOG(ERROR) << "event loop: epoll_wait failed";
    return;
  }
  for (int i = 0; i < ready; ++i) {
    const uint64_t data = events_[i].data.u64;
    const uint32_t index = static_cast<uint32_t>(data);
    const uint32_t generation = static_cast<uint32_t>(data >> 32);
    // Re-read the slot for each event: a handler may have added fds (growing slots_) or removed
    // others earlier in this round.
    if (index >= slots_.size()) continue;
    const Slot& slot = slots_[index];
    if (slot.handler == nullptr || slot.generation != generation) continue;
    slot.handler->OnEvents(events_[i].events);
  }
  cancelled_timers_.clear();
  if (after_events_) after_events_();
}

void EventLoop::Run() {
  while (!stopped_.load(std::memory_order_acquire)) RunRound();
}

void EventLoop::Stop() {
  stopped_.store(true, std::memory_order_release);
  Wake();
}

}  // namespace ferry::dataplane
