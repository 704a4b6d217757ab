#include "dataplane/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"
#include "gtest/gtest.h"

namespace ferry::dataplane {
namespace {

// A handler that calls a function.
class CallbackHandler : public EventLoop::Handler {
 public:
  explicit CallbackHandler(std::function<void(uint32_t)> fn) : fn_(std::move(fn)) {}
  void OnEvents(uint32_t events) override { fn_(events); }

 private:
  std::function<void(uint32_t)> fn_;
};

// A non-blocking eventfd, readable when `readable`.
UniqueFd MakeEventFd(bool readable) {
  UniqueFd fd(eventfd(readable ? 1 : 0, EFD_NONBLOCK | EFD_CLOEXEC));
  EXPECT_TRUE(fd);
  return fd;
}

void Signal(int fd) {
  const uint64_t one = 1;
  ASSERT_EQ(write(fd, &one, sizeof(one)), static_cast<ssize_t>(sizeof(one)));
}

void Drain(int fd) {
  uint64_t count = 0;
  ASSERT_EQ(read(fd, &count, sizeof(count)), static_cast<ssize_t>(sizeof(count)));
}

std::unique_ptr<EventLoop> NewLoop() {
  absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create();
  EXPECT_TRUE(loop.ok()) << loop.status();
  return loop.ok() ? *std::move(loop) : nullptr;
}

// Stops `loop` after `rounds` rounds, so that a broken test ends instead of hanging.
void StopAfterRounds(EventLoop* loop, int rounds) {
  auto count = std::make_shared<int>(0);
  loop->SetAfterEvents([loop, count, rounds] {
    if (++*count >= rounds) loop->Stop();
  });
}

TEST(EventLoopTest, CallsTheHandlerOfAReadableFd) {
  std::unique_ptr<EventLoop> loop = NewLoop();
  ASSERT_NE(loop, nullptr);
  UniqueFd fd = MakeEventFd(/*readable=*/true);
  uint32_t seen = 0;
  CallbackHandler handler([&](uint32_t events) {
    seen = events;
    Drain(fd.get());
    loop->Stop();
  });
  ASSERT_TRUE(loop->Add(fd.get(), EPOLLIN, &handler).ok());
  loop->Run();
  EXPECT_TRUE(seen & EPOLLIN);
}

TEST(EventLoopTest, RegistrationErrorsHaveSpecificCodes) {
  std::unique_ptr<EventLoop> loop = NewLoop();
  ASSERT_NE(loop, nullptr);
  UniqueFd fd = MakeEventFd(/*readable=*/false);
  UniqueFd other = MakeEventFd(/*readable=*/false);
  CallbackHandler handler([](uint32_t) {});
  ASSERT_TRUE(loop->Add(fd.get(), EPOLLIN, &handler).ok());
  EXPECT_EQ(loop->Add(fd.get(), EPOLLIN, &handler).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(loop->Add(other.get(), EPOLLIN, nullptr).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(loop->Add(-1, EPOLLIN, &handler).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(loop->Modify(other.get(), EPOLLIN, &handler).code(), absl::StatusCode::kNotFound);
  // An fd number that is not open: epoll_ctl's EBADF.
  UniqueFd closed = MakeEventFd(/*readable=*/false);
  const int closed_number = closed.get();
  closed.reset();
  EXPECT_FALSE(loop->Add(closed_number, EPOLLIN, &handler).ok());
  loop->Remove(other.get());  // Unknown: a no-op.
  loop->Remove(fd.get());
  EXPECT_EQ(loop->Modify(fd.get(), EPOLLIN, &handler).code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(loop->Add(fd.get(), EPOLLIN, &handler).ok()) << "a removed fd can be added again";
}

TEST(EventLoopTest, AHandlerRemovedEarlierInTheRoundIsNotCalled) {
  // Both fds are readable in the first round; whichever handler runs first removes the other, so
  // exactly one of them runs in that round even though epoll returned both.
  std::unique_ptr<EventLoop> loop = NewLoop();
  ASSERT_NE(loop, nullptr);
  UniqueFd a = MakeEventFd(/*readable=*/true);
  UniqueFd b = MakeEventFd(/*readable=*/true);
  int calls = 0;
  CallbackHandler on_a([&](uint32_t) {
    ++calls;
    loop->Remove(b.get());
    loop->Remove(a.get());
  });
  CallbackHandler on_b([&](uint32_t) {
    ++calls;
    loop->Remove(a.get());
    loop->Remove(b.get());
  });
  ASSERT_TRUE(loop->Add(a.get(), EPOLLIN, &on_a).ok());
  ASSERT_TRUE(loop->Add(b.get(), EPOLLIN, &on_b).ok());
  int calls_after_first_round = -1;
  loop->SetAfterEvents([&] {
    calls_after_first_round = calls;
    loop->Stop();
  });
  loop->Run();
  EXPECT_EQ(calls_after_first_round, 1);
}

TEST(EventLoopTest, AStaleEventDoesNotReachTheHandlerThatReusedItsSlot) {
  // A handler removes the other readable fd and adds a never-readable one, which takes the freed
  // slot. The removed fd's pending event in this round must not reach the new registration.
  std::unique_ptr<EventLoop> loop = NewLoop();
  ASSERT_NE(loop, nullptr);
  UniqueFd a = MakeEventFd(/*readable=*/true);
  UniqueFd b = MakeEventFd(/*readable=*/true);
  UniqueFd quiet = MakeEventFd(/*readable=*/false);
  int quiet_calls = 0;
  CallbackHandler on_quiet([&](uint32_t) { ++quiet_calls; });
  bool replaced = false;
  auto replace_other = [&](int self, int other) {
    if (replaced) return;
    replaced = true;
    Drain(self);
    loop->Remove(other);
    EXPECT_TRUE(loop->Add(quiet.get(), EPOLLIN, &on_quiet).ok());
  };
  CallbackHandler on_a([&](uint32_t) { replace_other(a.get(), b.get()); });
  CallbackHandler on_b([&](uint32_t) { replace_other(b.get(), a.get()); });
  ASSERT_TRUE(loop->Add(a.get(), EPOLLIN, &on_a).ok());
  ASSERT_TRUE(loop->Add(b.get(), EPOLLIN, &on_b).ok());
  StopAfterRounds(loop.get(), 1);
  loop->Run();
  EXPECT_TRUE(replaced);
  EXPECT_EQ(quiet_calls, 0);
}

// Removes its fd and deletes itself on its first call.
class SelfDeletingHandler : public EventLoop::Handler {
 public:
  SelfDeletingHandler(EventLoop* loop, int fd, int* calls) : loop_(loop), fd_(fd), calls_(calls) {}
  void OnEvents(uint32_t) override {
    ++*calls_;
    loop_->Remove(fd_);
    delete this;
  }

 private:
  EventLoop* const loop_;
  const int fd_;
  int* const calls_;
};

TEST(EventLoopTest, AHandlerMayRemoveAndDeleteItself) {
  std::unique_ptr<EventLoop> loop = NewLoop();
  ASSERT_NE(loop, nullptr);
  // Level-triggered and never drained: it would fire every round if it stayed registered.
  UniqueFd fd = MakeEventFd(/*readable=*/true);
  int calls = 0;
  ASSERT_TRUE(
      loop->Add(fd.get(), EPOLLIN, new SelfDeletingHandler(loop.get(), fd.get(), &calls)).ok());
  // A second, drained fd keeps the loop going for a few more rounds.
  UniqueFd ticker = MakeEventFd(/*readable=*/true);
  int ticks = 0;
  CallbackHandler on_tick([&](uint32_t) {
    Drain(ticker.get());
    if (++ticks < 5) Signal(ticker.get());
  });
  ASSERT_TRUE(loop->Add(ticker.get(), EPOLLIN, &on_tick).ok());
  StopAfterRounds(loop.get(), 5);
  loop->Run();
  EXPECT_EQ(ticks, 5);
  EXPECT_EQ(calls, 1);
}

TEST(EventLoopTest, AHandlerMayAddAnotherFd) {
  std::unique_ptr<EventLoop> loop = NewLoop();
  ASSERT_NE(loop, nullptr);
  UniqueFd first = MakeEventFd(/*readable=*/true);
  UniqueFd second = MakeEventFd(/*readable=*/true);
  bool second_called = false;
  CallbackHandler on_second([&](uint32_t) {
    second_called = true;
    loop->Stop();
  });
  CallbackHandler on_first([&](uint32_t) {
    Drain(first.get());
    EXPECT_TRUE(loop->Add(second.get(), EPOLLIN, &on_second).ok());
  });
  ASSERT_TRUE(loop->Add(first.get(), EPOLLIN, &on_first).ok());
  StopAfterRounds(loop.get(), 10);
  loop->Run();
  EXPECT_TRUE(second_called);
}

TEST(EventLoopTest, ModifyChangesEventsAndHandler) {
  std::unique_ptr<EventLoop> loop = NewLoop();
  ASSERT_NE(loop, nullptr);
  // Writable at once, never readable.
  UniqueFd fd = MakeEventFd(/*readable=*/false);
  int readable_calls = 0;
  uint32_t writable_events = 0;
  CallbackHandler on_readable([&](uint32_t) { ++readable_calls; });
  CallbackHandler on_writable([&](uint32_t events) {
    writable_events = events;
    loop->Stop();
  });
  ASSERT_TRUE(loop->Add(fd.get(), EPOLLIN, &on_readable).ok());
  ASSERT_TRUE(loop->Modify(fd.get(), EPOLLOUT, &on_writable).ok());
  StopAfterRounds(loop.get(), 10);
  loop->Run();
  EXPECT_TRUE(writable_events & EPOLLOUT);
  EXPECT_EQ(readable_calls, 0);
}

TEST(EventLoopTest, PostRunsFunctionsFromOtherThreadsOnTheLoopThreadInOrder) {
  std::unique_ptr<EventLoop> loop = NewLoop();
  ASSERT_NE(loop, nullptr);
  constexpr int kThreads = 4;
  constexpr int kPostsPerThread = 500;
  // Loop-thread state only: no lock, which TSan checks.
  std::vector<int> last_seen(kThreads, -1);
  int total = 0;
  bool in_order = true;
  std::thread::id loop_thread;
  bool all_on_loop_thread = true;
  loop->Post([&] { loop_thread = std::this_thread::get_id(); });
  std::vector<std::thread> posters;
  for (int t = 0; t < kThreads; ++t) {
    posters.emplace_back([&, t] {
      for (int i = 0; i < kPostsPerThread; ++i) {
        loop->Post([&, t, i] {
          if (std::this_thread::get_id() != loop_thread) all_on_loop_thread = false;
          if (i != last_seen[t] + 1) in_order = false;
          last_seen[t] = i;
          if (++total == kThreads * kPostsPerThread) loop->Stop();
        });
      }
    });
  }
  std::thread runner([&] { loop->Run(); });
  for (std::thread& poster : posters) poster.join();
  runner.join();
  EXPECT_EQ(total, kThreads * kPostsPerThread);
  EXPECT_TRUE(in_order);
  EXPECT_TRUE(all_on_loop_thread);
  EXPECT_NE(loop_thread, std::this_thread::get_id());
}

TEST(EventLoopTest, TimersFireRepeatedly) {
  std::unique_ptr<EventLoop> loop = NewLoop();
  ASSERT_NE(loop, nullptr);
  int fired = 0;
  const uint64_t id = loop->AddTimer(absl::Milliseconds(1), [&] {
    if (++fired == 5) loop->Stop();
  });
  EXPECT_NE(id, 0u);
  loop->Run();
  EXPECT_EQ(fired, 5);
}

TEST(EventLoopTest, CancelledTimersStopFiring) {
  std::unique_ptr<EventLoop> loop = NewLoop();
  ASSERT_NE(loop, nullptr);
  int never_calls = 0;
  const uint64_t never = loop->AddTimer(absl::Milliseconds(1), [&] { ++never_calls; });
  loop->CancelTimer(never);
  int once_calls = 0;
  uint64_t once = 0;
  once = loop->AddTimer(absl::Milliseconds(1), [&] {
    ++once_calls;
    loop->CancelTimer(once);  // From inside its own function.
  });
  int ticks = 0;
  const uint64_t ticker = loop->AddTimer(absl::Milliseconds(2), [&] {
    if (++ticks == 10) loop->Stop();
  });
  EXPECT_NE(once, ticker);
  loop->CancelTimer(0);      // Never an id: a no-op.
  loop->CancelTimer(never);  // Twice: a no-op.
  loop->Run();
  EXPECT_EQ(ticks, 10);
  EXPECT_EQ(never_calls, 0);
  EXPECT_EQ(once_calls, 1);
}

TEST(EventLoopTest, StopFromAnotherThreadEndsRun) {
  std::unique_ptr<EventLoop> loop = NewLoop();
  ASSERT_NE(loop, nullptr);
  std::atomic<bool> running{false};
  loop->Post([&] { running = true; });
  std::thread runner([&] { loop->Run(); });
  while (!running) std::this_thread::yield();
  loop->Stop();
  loop->Stop();   // Idempotent.
  runner.join();  // Hangs (and times out) if Stop does not end Run.
}

TEST(EventLoopTest, RunAfterStopReturnsAtOnce) {
  std::unique_ptr<EventLoop> loop = NewLoop();
  ASSERT_NE(loop, nullptr);
  bool posted_ran = false;
  loop->Post([&] { posted_ran = true; });
  loop->Stop();
  loop->Run();
  EXPECT_FALSE(posted_ran);
}

TEST(EventLoopTest, AfterEventsRunsOnceAfterEachRound) {
  std::unique_ptr<EventLoop> loop = NewLoop();
  ASSERT_NE(loop, nullptr);
  // Two fds ready in the first round, then one fd re-armed by its own handler for later rounds:
  // each handler call records how many hook calls it has seen.
  UniqueFd a = MakeEventFd(/*readable=*/true);
  UniqueFd b = MakeEventFd(/*readable=*/true);
  int hooks = 0;
  std::vector<int> a_saw;
  std::vector<int> b_saw;
  CallbackHandler on_a([&](uint32_t) {
    a_saw.push_back(hooks);
    Drain(a.get());
    if (a_saw.size() < 4) Signal(a.get());
  });
  CallbackHandler on_b([&](uint32_t) {
    b_saw.push_back(hooks);
    Drain(b.get());
  });
  ASSERT_TRUE(loop->Add(a.get(), EPOLLIN, &on_a).ok());
  ASSERT_TRUE(loop->Add(b.get(), EPOLLIN, &on_b).ok());
  loop->SetAfterEvents([&] {
    ++hooks;
    if (hooks == 4) loop->Stop();
  });
  loop->Run();
  EXPECT_EQ(hooks, 4);
  EXPECT_EQ(a_saw, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(b_saw, (std::vector<int>{0}));
}

}  // namespace
}  // namespace ferry::dataplane
