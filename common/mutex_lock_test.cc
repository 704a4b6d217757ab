#include "common/mutex_lock.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace ferry {
namespace {

// Under --config=tsan these also check that TSan sees the locks: the same code with plain
// MutexLock (and Debian's uninstrumented libabsl) is reported as a data race.

TEST(TsanVisibleLockTest, WritersExcludeEachOther) {
  absl::Mutex mu;
  int64_t count ABSL_GUARDED_BY(mu) = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        MutexLock lock(&mu);
        ++count;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  MutexLock lock(&mu);
  EXPECT_EQ(count, 40000);
}

TEST(TsanVisibleLockTest, ReadersSeeWholeWrites) {
  absl::Mutex mu;
  std::string value ABSL_GUARDED_BY(mu) = std::string(64, 'a');
  int torn = 0;
  std::thread reader([&] {
    for (int i = 0; i < 2000; ++i) {
      ReaderMutexLock lock(&mu);
      if (value != std::string(64, value[0])) ++torn;
    }
  });
  for (int i = 0; i < 2000; ++i) {
    MutexLock lock(&mu);
    value = std::string(64, static_cast<char>('a' + i % 26));
  }
  reader.join();
  EXPECT_EQ(torn, 0);
}

TEST(TsanVisibleLockTest, WaitWakesOnStateSetByAnotherThread) {
  absl::Mutex mu;
  absl::CondVar changed;
  int stage ABSL_GUARDED_BY(mu) = 0;
  std::thread other([&] {
    MutexLock lock(&mu);
    while (stage != 1) CondVarWait(&changed, &mu);
    stage = 2;
    changed.SignalAll();
  });
  {
    MutexLock lock(&mu);
    stage = 1;
    changed.SignalAll();
    while (stage != 2) CondVarWait(&changed, &mu);
    EXPECT_EQ(stage, 2);
  }
  other.join();
}

}  // namespace
}  // namespace ferry
