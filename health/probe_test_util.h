// Test helper: runs one probe on a LoopThread and waits (bounded) for its result.
//
//   LoopThread loop_thread;
//   ProbeResult result = RunProbe(loop_thread, [&](EventLoop& loop, ProbeCore::Done done) {
//     return TcpProbe::Start(loop, address, absl::Seconds(2), std::move(done));
//   });

#ifndef FERRY_HEALTH_PROBE_TEST_UTIL_H_
#define FERRY_HEALTH_PROBE_TEST_UTIL_H_

#include <functional>
#include <memory>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/mutex_lock.h"
#include "dataplane/testing/loop_thread.h"
#include "gtest/gtest.h"
#include "health/probe_result.h"

namespace ferry::health::test {

// Starts the probe `start` returns on the loop thread, waits up to `wait` for `done`, destroys
// the probe on the loop thread and returns the result. A probe that never calls `done`, or calls
// it twice, fails the test (and returns a result with detail "no result").
template <typename StartFn>
ProbeResult RunProbe(dataplane::test::LoopThread& loop_thread, StartFn start,
                     absl::Duration wait = absl::Seconds(20)) {
  absl::Mutex mu;
  absl::CondVar cv;
  int calls = 0;
  ProbeResult result{false, "no result"};
  decltype(start(*loop_thread.loop(), nullptr)) probe;
  loop_thread.RunSync([&] {
    probe = start(*loop_thread.loop(), [&](ProbeResult r) {
      MutexLock lock(&mu);
      ++calls;
      result = std::move(r);
      cv.SignalAll();
    });
  });
  {
    const absl::Time deadline = absl::Now() + wait;
    MutexLock lock(&mu);
    while (calls == 0 && absl::Now() < deadline) {
      mutex_lock_internal::Releasing(&mu);
      cv.WaitWithDeadline(&mu, deadline);
      mutex_lock_internal::Acquired(&mu);
    }
  }
  // A second call would come from the same loop; let a few rounds pass to catch it.
  loop_thread.WaitForRound();
  loop_thread.RunSync([&] { probe.reset(); });
  MutexLock lock(&mu);
  EXPECT_EQ(calls, 1) << "done must run exactly once";
  return result;
}

}  // namespace ferry::health::test

#endif  // FERRY_HEALTH_PROBE_TEST_UTIL_H_
