#include "dataplane/testing/loop_thread.h"

#include <utility>

#include "absl/synchronization/mutex.h"
#include "common/mutex_lock.h"
#include "glog/logging.h"

namespace ferry::dataplane::test {

LoopThread::LoopThread() {
  absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create();
  CHECK(loop.ok()) << loop.status();
  loop_ = *std::move(loop);
  thread_ = std::thread([this] { loop_->Run(); });
}

LoopThread::~LoopThread() {
  loop_->Stop();
  thread_.join();
}

void LoopThread::RunSync(const std::function<void()>& fn) {
  // Locks through common/mutex_lock.h, so that ThreadSanitizer sees what `fn` did happen
  // before this returns.
  absl::Mutex mu;
  absl::CondVar cv;
  bool done = false;
  loop_->Post([&] {
    fn();
    MutexLock lock(&mu);
    done = true;
    cv.Signal();
  });
  MutexLock lock(&mu);
  while (!done) CondVarWait(&cv, &mu);
}

void LoopThread::WaitForRound() {
  // A posted function runs once per round, from the loop's wake-up fd, in whichever order epoll
  // listed the round's fds. The first call may land in a round already under way; the second
  // then runs in a round R whose epoll_wait came after this call, and the third in a round after
  // R, so R (every fd ready at its start included) is done.
  for (int i = 0; i < 3; ++i) RunSync([] {});
}

bool CallbackRecorder::WaitFor(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  MutexLock lock(&mu_);
  while (!done()) {
    if (absl::Now() >= deadline) return false;
    // CondVarWait of common/mutex_lock.h, with a deadline.
    mutex_lock_internal::Releasing(&mu_);
    cv_.WaitWithDeadline(&mu_, deadline);
    mutex_lock_internal::Acquired(&mu_);
  }
  return true;
}

}  // namespace ferry::dataplane::test
