#include "health/timer_queue.h"

#include <memory>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "dataplane/testing/loop_thread.h"
#include "gtest/gtest.h"

namespace ferry::health {
namespace {

using dataplane::test::LoopThread;

TEST(TimerQueueTest, RunsDueFunctionsInDeadlineOrderAndSkipsCancelled) {
  LoopThread loop_thread;
  std::shared_ptr<TimerQueue> queue;
  std::vector<int> order;
  loop_thread.RunSync([&] {
    queue = *TimerQueue::Create(*loop_thread.loop());
    const absl::Duration now = MonotonicNow();
    queue->Schedule(now + absl::Milliseconds(30), [&] { order.push_back(3); });
    queue->Schedule(now + absl::Milliseconds(10), [&] { order.push_back(1); });
    const TimerQueue::Id cancelled =
        queue->Schedule(now + absl::Milliseconds(20), [&] { order.push_back(2); });
    queue->Schedule(now - absl::Seconds(1), [&] { order.push_back(0); });
    queue->Cancel(cancelled);
    EXPECT_EQ(queue->size(), 3u);
  });
  absl::SleepFor(absl::Milliseconds(100));
  loop_thread.WaitForRound();
  loop_thread.RunSync([&] {
    EXPECT_EQ(order, (std::vector<int>{0, 1, 3}));
    EXPECT_EQ(queue->size(), 0u);
    queue.reset();
  });
}

TEST(TimerQueueTest, AFunctionMayCancelOthersAndDropTheQueue) {
  LoopThread loop_thread;
  std::shared_ptr<TimerQueue> queue;
  int ran = 0;
  TimerQueue::Id second = 0;
  loop_thread.RunSync([&] {
    queue = *TimerQueue::Create(*loop_thread.loop());
    const absl::Duration at = MonotonicNow() + absl::Milliseconds(10);
    queue->Schedule(at, [&] {
      ++ran;
      queue->Cancel(second);
      queue.reset();  // the last reference: the queue outlives its own dispatch
    });
    second = queue->Schedule(at, [&] { ++ran; });
  });
  absl::SleepFor(absl::Milliseconds(60));
  loop_thread.WaitForRound();
  loop_thread.RunSync([&] {
    EXPECT_EQ(ran, 1);
    EXPECT_EQ(queue, nullptr);
  });
}

TEST(TimerQueueTest, ForLoopSharesOneQueuePerLoopWhileHeld) {
  LoopThread loop_thread;
  loop_thread.RunSync([&] {
    std::shared_ptr<TimerQueue> a = TimerQueue::ForLoop(*loop_thread.loop());
    std::shared_ptr<TimerQueue> b = TimerQueue::ForLoop(*loop_thread.loop());
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a, b);
    TimerQueue* const old = a.get();
    a.reset();
    b.reset();
    std::shared_ptr<TimerQueue> c = TimerQueue::ForLoop(*loop_thread.loop());
    ASSERT_NE(c, nullptr);
    (void)old;  // a new queue (the old one was freed with its last holder)
    EXPECT_EQ(c.use_count(), 1);
  });
}

TEST(TimerQueueTest, ManyCancelledDeadlinesDoNotAccumulate) {
  LoopThread loop_thread;
  loop_thread.RunSync([&] {
    std::shared_ptr<TimerQueue> queue = *TimerQueue::Create(*loop_thread.loop());
    const absl::Duration far = MonotonicNow() + absl::Hours(1);
    for (int i = 0; i < 10000; ++i) queue->Cancel(queue->Schedule(far + absl::Seconds(i), [] {}));
    EXPECT_EQ(queue->size(), 0u);
  });
}

}  // namespace
}  // namespace ferry::health
