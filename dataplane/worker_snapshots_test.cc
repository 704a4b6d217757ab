#include "dataplane/worker_snapshots.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "dataplane/testing/allocation_counter.h"
#include "gtest/gtest.h"

namespace ferry::dataplane {
namespace {

// A snapshot that reports its own destruction in a side array, so a test can tell whether a
// snapshot was freed without touching its (possibly freed) memory.
struct Snapshot {
  Snapshot(int id, std::atomic<bool>* freed_flags) : id(id), freed_flags(freed_flags) {
    for (int i = 0; i < kWords; ++i) words[i] = Word(id, i);
  }
  ~Snapshot() {
    freed_flags[id].store(true, std::memory_order_seq_cst);
    for (int i = 0; i < kWords; ++i) words[i] = 0;  // a later read of a freed one sees junk
  }
  static uint64_t Word(int id, int i) { return (uint64_t(id) << 32) | uint64_t(i + 1); }

  static constexpr int kWords = 16;
  const int id;
  std::atomic<bool>* const freed_flags;
  uint64_t words[kWords];
};

class SnapshotFactory {
 public:
  explicit SnapshotFactory(int count) : freed_(new std::atomic<bool>[count]) {
    for (int i = 0; i < count; ++i) freed_[i].store(false);
  }
  std::shared_ptr<const Snapshot> Make(int id) {
    return std::make_shared<const Snapshot>(id, freed_.get());
  }
  bool freed(int id) const { return freed_[id].load(std::memory_order_seq_cst); }
  std::atomic<bool>* flags() { return freed_.get(); }

 private:
  std::unique_ptr<std::atomic<bool>[]> freed_;
};

TEST(WorkerSnapshotsTest, NothingIsCurrentBeforeTheFirstPublish) {
  WorkerSnapshots<Snapshot> snapshots(2);
  EXPECT_EQ(snapshots.Acquire(0), nullptr);
  EXPECT_EQ(snapshots.Acquire(1), nullptr);
  EXPECT_EQ(snapshots.Current(), nullptr);
  EXPECT_EQ(snapshots.version(), 0u);
  EXPECT_EQ(snapshots.retired_count(), 0u);
  EXPECT_EQ(snapshots.Reclaim(), 0u);
  EXPECT_EQ(snapshots.workers(), 2u);
}

TEST(WorkerSnapshotsTest, PublishMakesCurrentAndCountsVersions) {
  SnapshotFactory factory(3);
  WorkerSnapshots<Snapshot> snapshots(1);
  for (int id = 0; id < 3; ++id) {
    snapshots.Publish(factory.Make(id));
    EXPECT_EQ(snapshots.version(), uint64_t(id + 1));
    ASSERT_NE(snapshots.Current(), nullptr);
    EXPECT_EQ(snapshots.Current()->id, id);
    const Snapshot* acquired = snapshots.Acquire(0);
    ASSERT_NE(acquired, nullptr);
    EXPECT_EQ(acquired, snapshots.Current());
  }
  // Publish(n) retired n - 1 while the worker still held it, and freed n - 2, which the worker
  // had left by acquiring n - 1.
  EXPECT_TRUE(factory.freed(0));
  EXPECT_FALSE(factory.freed(1));
  EXPECT_EQ(snapshots.retired_count(), 1u);
  EXPECT_EQ(snapshots.Reclaim(), 1u);  // the worker holds 2 now
  EXPECT_TRUE(factory.freed(1));
  EXPECT_FALSE(factory.freed(2));
  EXPECT_EQ(snapshots.retired_count(), 0u);
}

TEST(WorkerSnapshotsTest, AHeldSnapshotIsFreedOnlyAfterItsWorkerMovesOn) {
  SnapshotFactory factory(3);
  WorkerSnapshots<Snapshot> snapshots(2);
  snapshots.Publish(factory.Make(0));
  const Snapshot* held0 = snapshots.Acquire(0);
  ASSERT_EQ(held0->id, 0);

  snapshots.Publish(factory.Make(1));  // 0 retired, still held by worker 0
  EXPECT_EQ(snapshots.retired_count(), 1u);
  EXPECT_FALSE(factory.freed(0));
  EXPECT_EQ(held0->words[3], Snapshot::Word(0, 3));

  EXPECT_EQ(snapshots.Acquire(1)->id, 1);  // another worker's acquire frees nothing
  EXPECT_EQ(snapshots.Reclaim(), 0u);
  EXPECT_FALSE(factory.freed(0));

  EXPECT_EQ(snapshots.Acquire(0)->id, 1);  // worker 0 moves on
  EXPECT_FALSE(factory.freed(0));          // Acquire itself never frees
  EXPECT_EQ(snapshots.Reclaim(), 1u);
  EXPECT_TRUE(factory.freed(0));
  EXPECT_EQ(snapshots.retired_count(), 0u);
  EXPECT_EQ(snapshots.Reclaim(), 0u);
}

TEST(WorkerSnapshotsTest, ReleaseLetsReclaimFreeWhatTheWorkerHeld) {
  SnapshotFactory factory(3);
  WorkerSnapshots<Snapshot> snapshots(1);
  snapshots.Publish(factory.Make(0));
  snapshots.Acquire(0);
  snapshots.Publish(factory.Make(1));
  snapshots.Publish(factory.Make(2));  // 1 was never held: freed at once
  EXPECT_TRUE(factory.freed(1));
  EXPECT_FALSE(factory.freed(0));
  EXPECT_EQ(snapshots.retired_count(), 1u);
  snapshots.Release(0);
  EXPECT_EQ(snapshots.Reclaim(), 1u);
  EXPECT_TRUE(factory.freed(0));
  EXPECT_FALSE(factory.freed(2));  // the current one is never retired
}

TEST(WorkerSnapshotsTest, RepublishingTheCurrentSnapshotRetiresNothing) {
  SnapshotFactory factory(1);
  WorkerSnapshots<Snapshot> snapshots(1);
  std::shared_ptr<const Snapshot> only = factory.Make(0);
  snapshots.Publish(only);
  snapshots.Acquire(0);
  snapshots.Publish(only);
  EXPECT_EQ(snapshots.version(), 2u);
  EXPECT_EQ(snapshots.retired_count(), 0u);
  EXPECT_EQ(snapshots.Acquire(0), only.get());
}

TEST(WorkerSnapshotsTest, PublishingNullGivesWorkersNothing) {
  SnapshotFactory factory(1);
  WorkerSnapshots<Snapshot> snapshots(1);
  snapshots.Publish(factory.Make(0));
  snapshots.Acquire(0);
  snapshots.Publish(nullptr);
  EXPECT_EQ(snapshots.Current(), nullptr);
  EXPECT_FALSE(factory.freed(0));
  EXPECT_EQ(snapshots.Acquire(0), nullptr);
  EXPECT_EQ(snapshots.Reclaim(), 1u);
  EXPECT_TRUE(factory.freed(0));
}

TEST(WorkerSnapshotsTest, CallersMayKeepTheirOwnReference) {
  SnapshotFactory factory(2);
  WorkerSnapshots<Snapshot> snapshots(1);
  std::shared_ptr<const Snapshot> kept = factory.Make(0);
  snapshots.Publish(kept);
  snapshots.Publish(factory.Make(1));
  // Dropped by WorkerSnapshots (counted as freed by Reclaim), alive through `kept`.
  EXPECT_EQ(snapshots.retired_count(), 0u);
  EXPECT_FALSE(factory.freed(0));
  EXPECT_EQ(kept.use_count(), 1);
}

TEST(WorkerSnapshotsTest, DestructorFreesCurrentAndRetired) {
  SnapshotFactory factory(2);
  {
    WorkerSnapshots<Snapshot> snapshots(1);
    snapshots.Publish(factory.Make(0));
    snapshots.Acquire(0);
    snapshots.Publish(factory.Make(1));
    ASSERT_EQ(snapshots.retired_count(), 1u);
    snapshots.Release(0);  // the worker stopped, as the destructor requires
  }
  EXPECT_TRUE(factory.freed(0));
  EXPECT_TRUE(factory.freed(1));
}

TEST(WorkerSnapshotsTest, AcquireAndReleaseDoNotAllocate) {
  SnapshotFactory factory(2);
  WorkerSnapshots<Snapshot> snapshots(4);
  snapshots.Publish(factory.Make(0));
  const long before_publish = test::AllocationCount();
  snapshots.Publish(factory.Make(1));
  // Without this the zero below could mean the counter was never linked in.
  ASSERT_GT(test::AllocationCount(), before_publish);

  const long before = test::AllocationCount();
  for (int round = 0; round < 1000; ++round) {
    for (size_t w = 0; w < 4; ++w) {
      if (snapshots.Acquire(w) == nullptr) ADD_FAILURE() << "nothing current";
      if (round % 7 == 0) snapshots.Release(w);
    }
  }
  EXPECT_EQ(test::AllocationCount(), before);
}

TEST(WorkerSnapshotsDeathTest, RefusesZeroWorkersAndUnknownWorkers) {
  EXPECT_DEATH(WorkerSnapshots<Snapshot> snapshots(0), "at least one worker");
  WorkerSnapshots<Snapshot> snapshots(2);
  EXPECT_DEATH(snapshots.Acquire(2), "no such worker");
  EXPECT_DEATH(snapshots.Release(7), "no such worker");
}

// Four workers acquire in a loop, reading all of what they hold, while the control thread
// publishes 2,000 versions and reclaims after each. A snapshot freed while a worker holds it
// shows up as a set freed flag (and, under ASan, as a use after free).
TEST(WorkerSnapshotsTest, StressNeverFreesASnapshotAWorkerHolds) {
  constexpr int kWorkers = 4;
  constexpr int kVersions = 2000;
  SnapshotFactory factory(kVersions);
  WorkerSnapshots<Snapshot> snapshots(kWorkers);
  std::atomic<bool> done{false};
  std::atomic<long> violations{0};
  std::atomic<long> acquires{0};
  std::vector<int> last_seen(kWorkers, -1);

  auto worker = [&](int w) {
    int previous = -1;
    long local_acquires = 0;
    for (bool last_round = false; !last_round;) {
      last_round = done.load(std::memory_order_seq_cst);  // one more round after the last one
      const Snapshot* held = snapshots.Acquire(w);
      ++local_acquires;
      if (held == nullptr) continue;
      const int id = held->id;
      if (id < 0 || id >= kVersions || factory.freed(id)) {
        violations.fetch_add(1);
        continue;
      }
      if (id < previous) violations.fetch_add(1);  // versions only move forward
      previous = id;
      // A "batch": read the whole snapshot a few times, then check it is still not freed.
      uint64_t sum = 0;
      for (int pass = 0; pass < 4; ++pass) {
        for (int i = 0; i < Snapshot::kWords; ++i) sum += held->words[i] ^ Snapshot::Word(id, i);
      }
      if (sum != 0 || factory.freed(id)) violations.fetch_add(1);
    }
    snapshots.Release(w);
    last_seen[w] = previous;
    acquires.fetch_add(local_acquires);
  };

  std::vector<std::thread> threads;
  for (int w = 0; w < kWorkers; ++w) threads.emplace_back(worker, w);
  size_t most_retired = 0;
  for (int id = 0; id < kVersions; ++id) {
    snapshots.Publish(factory.Make(id));
    // After Publish's Reclaim, only snapshots some worker holds remain: at most one each.
    most_retired = std::max(most_retired, snapshots.retired_count());
    if (id % 64 == 0) std::this_thread::yield();
  }
  done.store(true, std::memory_order_seq_cst);
  for (std::thread& t : threads) t.join();

  EXPECT_EQ(violations.load(), 0);
  EXPECT_LE(most_retired, size_t{kWorkers});
  EXPECT_GE(acquires.load(), kWorkers);
  // Each worker's final round ran after the last Publish, so each saw the last version.
  for (int w = 0; w < kWorkers; ++w) EXPECT_EQ(last_seen[w], kVersions - 1) << "worker " << w;
  EXPECT_EQ(snapshots.version(), uint64_t{kVersions});

  // Every worker released: everything but the current one can go.
  snapshots.Reclaim();
  EXPECT_EQ(snapshots.retired_count(), 0u);
  for (int id = 0; id < kVersions - 1; ++id) ASSERT_TRUE(factory.freed(id)) << id;
  EXPECT_FALSE(factory.freed(kVersions - 1));
}

}  // namespace
}  // namespace ferry::dataplane
