// LoopThread: an EventLoop running on a thread of its own, for tests that drive loop-bound
// objects (StreamConn, ByteSocket) from the test thread while raw sockets play the peer.
//
//   LoopThread loop_thread;
//   loop_thread.RunSync([&] { conn = std::make_unique<StreamConn>(loop_thread.loop(), ...); });
//
// Everything that touches a loop-bound object goes through RunSync (or runs in its callbacks).

#ifndef FERRY_DATAPLANE_TESTING_LOOP_THREAD_H_
#define FERRY_DATAPLANE_TESTING_LOOP_THREAD_H_

#include <functional>
#include <memory>
#include <thread>

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

}  // namespace ferry::dataplane::test

#endif  // FERRY_DATAPLANE_TESTING_LOOP_THREAD_H_
