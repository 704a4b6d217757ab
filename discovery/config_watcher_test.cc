#include "discovery/config_watcher.h"

#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace ferry::discovery {
namespace {

// Generous: waits end as soon as the callback runs, this only bounds a failing test.
constexpr absl::Duration kWaitLimit = absl::Seconds(20);

// Counts callbacks; tests wait on the count. std::mutex rather than absl::Mutex: Debian's
// libabsl is not built for ThreadSanitizer, which then cannot see its locking.
class CallbackCounter {
 public:
  std::function<void()> Callback() {
    return [this] {
      std::lock_guard<std::mutex> lock(mu_);
      ++count_;
      changed_.notify_all();
    };
  }

  // True once the count reaches `n` (false after kWaitLimit).
  bool WaitFor(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, absl::ToChronoSeconds(kWaitLimit), [&] { return count_ >= n; });
  }

  int count() {
    std::lock_guard<std::mutex> lock(mu_);
    return count_;
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  int count_ = 0;
};

class ConfigWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    ASSERT_NE(tmp, nullptr);
    dir_ = absl::StrCat(tmp, "/config_watcher_test_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_EQ(mkdir(dir_.c_str(), 0755), 0);
    path_ = absl::StrCat(dir_, "/config.yaml");
  }

  std::string InDir(const std::string& name) const { return absl::StrCat(dir_, "/", name); }

  static void Write(const std::string& path, const std::string& contents) {
    std::ofstream out(path, std::ios::trunc);
    out << contents;
    out.close();
    ASSERT_TRUE(out.good()) << path;
  }

  // Lets a few debounce periods pass, so that a wrongly reported event would have fired.
  static void Settle() { absl::SleepFor(kDebounce * 5); }

  static constexpr absl::Duration kDebounce = absl::Milliseconds(50);

  std::unique_ptr<ConfigWatcher> StartWatcher(CallbackCounter& counter) {
    ConfigWatcher::Options options;
    options.debounce = kDebounce;
    auto watcher = std::make_unique<ConfigWatcher>(path_, counter.Callback(), options);
    EXPECT_TRUE(watcher->Start().ok());
    return watcher;
  }

  std::string dir_;
  std::string path_;
};

TEST_F(ConfigWatcherTest, InPlaceWriteIsReported) {
  Write(path_, "a: 1\n");
  CallbackCounter counter;
  auto watcher = StartWatcher(counter);
  Settle();
  EXPECT_EQ(counter.count(), 0);  // Starting reports nothing.
  Write(path_, "a: 2\n");
  EXPECT_TRUE(counter.WaitFor(1));
}

TEST_F(ConfigWatcherTest, RenameOverTheFileIsReported) {
  Write(path_, "a: 1\n");
  CallbackCounter counter;
  auto watcher = StartWatcher(counter);
  // What vim and most tools do: write a temporary file, rename it over the original.
  const std::string tmp = InDir(".config.yaml.tmp");
  Write(tmp, "a: 2\n");
  ASSERT_EQ(std::rename(tmp.c_str(), path_.c_str()), 0);
  EXPECT_TRUE(counter.WaitFor(1));
}

TEST_F(ConfigWatcherTest, DeletingAndRecreatingAreEachReported) {
  Write(path_, "a: 1\n");
  CallbackCounter counter;
  auto watcher = StartWatcher(counter);
  ASSERT_EQ(unlink(path_.c_str()), 0);
  ASSERT_TRUE(counter.WaitFor(1));
  Write(path_, "a: 2\n");
  EXPECT_TRUE(counter.WaitFor(2));
}

TEST_F(ConfigWatcherTest, FileCreatedAfterStartIsReported) {
  CallbackCounter counter;
  auto watcher = StartWatcher(counter);
  Write(path_, "a: 1\n");
  EXPECT_TRUE(counter.WaitFor(1));
}

TEST_F(ConfigWatcherTest, OtherFilesInTheDirectoryAreIgnored) {
  Write(path_, "a: 1\n");
  CallbackCounter counter;
  auto watcher = StartWatcher(counter);
  // Names that share a prefix or suffix with the watched one, and a rename away from it.
  for (const char* name :
       {"other.yaml", "config.yaml.swp", "config.yam", "xconfig.yaml", "config.yaml~"}) {
    Write(InDir(name), "x\n");
  }
  ASSERT_EQ(std::rename(InDir("other.yaml").c_str(), InDir("other2.yaml").c_str()), 0);
  ASSERT_EQ(unlink(InDir("config.yam").c_str()), 0);
  ASSERT_EQ(mkdir(InDir("config.yaml.d").c_str(), 0755), 0);
  Settle();
  EXPECT_EQ(counter.count(), 0);
  // The watch is alive all the same.
  Write(path_, "a: 2\n");
  EXPECT_TRUE(counter.WaitFor(1));
  Settle();
  EXPECT_EQ(counter.count(), 1);
}

TEST_F(ConfigWatcherTest, ABurstOfWritesIsOneCallback) {
  Write(path_, "a: 0\n");
  CallbackCounter counter;
  ConfigWatcher::Options options;
  // Long enough that the burst below fits in it on any machine.
  options.debounce = absl::Seconds(1);
  options.max_delay = absl::Seconds(30);
  ConfigWatcher watcher(path_, counter.Callback(), options);
  ASSERT_TRUE(watcher.Start().ok());
  for (int i = 1; i <= 20; ++i) Write(path_, absl::StrCat("a: ", i, "\n"));
  ASSERT_TRUE(counter.WaitFor(1));
  absl::SleepFor(absl::Seconds(2));
  EXPECT_EQ(counter.count(), 1);
}

TEST_F(ConfigWatcherTest, ContinuousWritesAreReportedByMaxDelay) {
  Write(path_, "a: 0\n");
  CallbackCounter counter;
  ConfigWatcher::Options options;
  options.debounce = absl::Milliseconds(200);
  options.max_delay = absl::Milliseconds(300);
  ConfigWatcher watcher(path_, counter.Callback(), options);
  ASSERT_TRUE(watcher.Start().ok());
  // Writes every 20 ms never leave 200 ms of quiet; max_delay fires anyway. Keep writing until
  // it does (bounded), and check it did while the writes went on.
  const absl::Time give_up = absl::Now() + kWaitLimit;
  int writes = 0;
  while (counter.count() == 0 && absl::Now() < give_up) {
    Write(path_, absl::StrCat("a: ", ++writes, "\n"));
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_GE(counter.count(), 1);
}

TEST_F(ConfigWatcherTest, StopIsIdempotentAndEndsCallbacks) {
  CallbackCounter counter;
  auto watcher = StartWatcher(counter);
  watcher->Stop();
  watcher->Stop();
  Write(path_, "a: 1\n");
  Settle();
  EXPECT_EQ(counter.count(), 0);
  EXPECT_EQ(watcher->Start().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(ConfigWatcherTest, StopWithoutStartAndDestructionWhileRunningAreSafe) {
  CallbackCounter counter;
  {
    ConfigWatcher never_started(path_, counter.Callback());
    never_started.Stop();
  }
  {
    auto running = StartWatcher(counter);
    Write(path_, "a: 1\n");  // Possibly pending when the destructor runs.
  }
  EXPECT_LE(counter.count(), 1);
}

TEST_F(ConfigWatcherTest, StartTwiceIsRefused) {
  CallbackCounter counter;
  auto watcher = StartWatcher(counter);
  EXPECT_EQ(watcher->Start().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(ConfigWatcherTest, StartErrorsNameTheProblem) {
  CallbackCounter counter;
  ConfigWatcher missing_dir(InDir("absent/config.yaml"), counter.Callback());
  const absl::Status missing = missing_dir.Start();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.message(),
            absl::StrCat("cannot watch the directory ", InDir("absent"), " of ",
                         InDir("absent/config.yaml"), ": No such file or directory"));

  Write(InDir("plain"), "x");
  ConfigWatcher not_a_dir(InDir("plain/config.yaml"), counter.Callback());
  EXPECT_EQ(not_a_dir.Start().code(), absl::StatusCode::kInvalidArgument);

  ConfigWatcher dir_path(absl::StrCat(dir_, "/"), counter.Callback());
  EXPECT_EQ(dir_path.Start().message(),
            absl::StrCat("ConfigWatcher: \"", dir_, "/\" names a directory, not a file"));

  // A failed Start may be retried once the directory exists.
  ASSERT_EQ(mkdir(InDir("absent").c_str(), 0755), 0);
  EXPECT_TRUE(missing_dir.Start().ok());
}

TEST_F(ConfigWatcherTest, RemovingTheDirectoryIsReportedOnce) {
  const std::string sub = InDir("sub");
  ASSERT_EQ(mkdir(sub.c_str(), 0755), 0);
  CallbackCounter counter;
  ConfigWatcher::Options options;
  options.debounce = kDebounce;
  ConfigWatcher watcher(absl::StrCat(sub, "/config.yaml"), counter.Callback(), options);
  ASSERT_TRUE(watcher.Start().ok());
  ASSERT_EQ(rmdir(sub.c_str()), 0);
  EXPECT_TRUE(counter.WaitFor(1));
  Settle();
  EXPECT_EQ(counter.count(), 1);
}

}  // namespace
}  // namespace ferry::discovery
