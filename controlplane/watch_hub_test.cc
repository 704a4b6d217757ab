#include "controlplane/watch_hub.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "controlplane/state_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ferry::controlplane {
namespace {

using ::testing::ElementsAre;

// A one-shot signal between threads (std primitives, which ThreadSanitizer sees).
class Latch {
 public:
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

std::vector<WatchEvent> Revision(int64_t revision, const std::string& key) {
  return {WatchEvent{ChangeType::kPut, key, "v", revision}};
}

TEST(WatchHubTest, LaterRevisionWaitsForEarlierOne) {
  WatchHub hub(/*last_revision=*/10);
  std::mutex mu;
  std::vector<int64_t> seen;
  hub.Watch("", [&](const WatchEvent& e) {
    std::lock_guard<std::mutex> lock(mu);
    seen.push_back(e.revision);
  });
  // Revision 12 is published first, by another thread; it must wait for 11.
  std::thread later([&] { hub.Publish(Revision(12, "/b")); });
  absl::SleepFor(absl::Milliseconds(50));  // give the wrong order a chance to happen
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_TRUE(seen.empty());
  }
  hub.Publish(Revision(11, "/a"));
  later.join();
  EXPECT_THAT(seen, ElementsAre(11, 12));
}

TEST(WatchHubTest, PublishFromInsideCallbackIsDeliveredAfterIt) {
  WatchHub hub(0);
  std::vector<std::string> order;
  hub.Watch("", [&](const WatchEvent& e) {
    order.push_back("begin " + e.key);
    if (e.key == "/first") hub.Publish(Revision(2, "/second"));
    order.push_back("end " + e.key);
  });
  hub.Publish(Revision(1, "/first"));
  EXPECT_THAT(order, ElementsAre("begin /first", "end /first", "begin /second", "end /second"));
}

TEST(WatchHubTest, UnwatchWaitsForCallbackRunningOnAnotherThread) {
  WatchHub hub(0);
  Latch in_callback;
  Latch release;
  std::atomic<bool> callback_done{false};
  const WatchId id = hub.Watch("", [&](const WatchEvent&) {
    in_callback.Open();
    release.Wait();
    callback_done = true;
  });
  std::thread writer([&] { hub.Publish(Revision(1, "/a")); });
  in_callback.Wait();
  std::thread releaser([&] {
    absl::SleepFor(absl::Milliseconds(50));
    release.Open();
  });
  hub.Unwatch(id);
  EXPECT_TRUE(callback_done.load()) << "Unwatch returned while the callback was still running";
  writer.join();
  releaser.join();
}

TEST(WatchHubTest, PrefixSelectsEvents) {
  WatchHub hub(0);
  std::vector<std::string> keys;
  hub.Watch("/services/", [&](const WatchEvent& e) { keys.push_back(e.key); });
  hub.Publish({WatchEvent{ChangeType::kPut, "/services/t/a", "", 1},
               WatchEvent{ChangeType::kPut, "/servicesX", "", 1},
               WatchEvent{ChangeType::kDelete, "/services/t/b", "", 1}});
  EXPECT_THAT(keys, ElementsAre("/services/t/a", "/services/t/b"));
}

}  // namespace
}  // namespace ferry::controlplane
