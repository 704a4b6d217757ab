// LoopThread: an EventLoop running on a thread of its own, for tests that drive loop-bound
// objects (StreamConn, ByteSocket) from the test thread while raw sockets play the peer.
//
//   LoopThread loop_thread;
//   loop_thread.RunSync([&] { conn = std::make_unique<StreamConn>(loop_thread.loop(), ...); });
//
// Everything that touches a loop-bound object goes through RunSync (or runs in its callbacks).
// CallbackRecorder is the base for test delegates that record callbacks for the test thread.

#ifndef FERRY_DATAPLANE_TESTING_LOOP_THREAD_H_
#define FERRY_DATAPLANE_TESTING_LOOP_THREAD_H_

#include <functional>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "dataplane/event_loop.h"

namespace ferry::dataplane::test {

class LoopThread {
 public:
  // Creates the loop (CHECK-fails when it cannot) and starts running it.
  LoopThread();
  // Stops the loop and joins the thread. Destroy loop-bound objects first (with RunSync).
  ~LoopThread();

  LoopThread(const LoopThread&) = delete;
  LoopThread& operator=(const LoopThread&) = delete;

  EventLoop* loop() const { return loop_.get(); }

  // Runs `fn` on the loop thread and returns once it has run. Test thread only.
  void RunSync(const std::function<void()>& fn);

  // Returns once a whole loop round whose epoll_wait began after this call has finished:
  // whatever was ready on the loop's fds when it was called has been handled (level-triggered
  // fds that stay ready are handled again later, too).
  void WaitForRound();

 private:
  std::unique_ptr<EventLoop> loop_;
  std::thread thread_;
};

// A base for test delegates: their callbacks (on the loop thread) record what they saw under mu_
// and call Recorded(); the test thread waits for a condition over the records with WaitFor.
class CallbackRecorder {
 protected:
  // Wakes WaitFor; call under mu_ after recording.
  void Recorded() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { cv_.SignalAll(); }

  // Waits until `done` holds and returns true, or false once `timeout` has passed. `done` runs
  // on the calling thread with mu_ held (locked through common/mutex_lock.h), so it reads the
  // records directly and ThreadSanitizer sees the callbacks' writes happen before it
  // (absl::Mutex::Await would run it inside uninstrumented libabsl).
  bool WaitFor(const std::function<bool()>& done, absl::Duration timeout = absl::Seconds(10))
      ABSL_LOCKS_EXCLUDED(mu_);

  absl::Mutex mu_;

 private:
  absl::CondVar cv_;
};

}  // namespace ferry::dataplane::test

#endif  // FERRY_DATAPLANE_TESTING_LOOP_THREAD_H_
