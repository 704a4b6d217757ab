#include "dataplane/drop_reason.h"

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "dataplane/frame.h"
#include "gtest/gtest.h"

namespace ferry::dataplane {
namespace {

bool IsSnakeCase(absl::string_view name) {
  if (name.empty() || name.front() == '_' || name.back() == '_') return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return name.find("__") == absl::string_view::npos;
}

TEST(DropReasonTest, EveryReasonHasAUniqueSnakeCaseName) {
  absl::flat_hash_set<std::string> names;
  for (DropReason reason : AllDropReasons()) {
    const absl::string_view name = DropReasonName(reason);
    EXPECT_TRUE(IsSnakeCase(name)) << "'" << name << "'";
    EXPECT_NE(name, "unknown") << static_cast<int>(reason);
    EXPECT_TRUE(names.insert(std::string(name)).second) << "duplicate " << name;
  }
  EXPECT_EQ(names.size(), kDropReasonCount);
}

TEST(DropReasonTest, NamesAreTheStableMetricLabels) {
  // These labels are an interface (dashboards, alerts): changing one is a break.
  EXPECT_EQ(DropReasonName(DropReason::kTooShort), "too_short");
  EXPECT_EQ(DropReasonName(DropReason::kBadMagic), "bad_magic");
  EXPECT_EQ(DropReasonName(DropReason::kBadTag), "bad_tag");
  EXPECT_EQ(DropReasonName(DropReason::kUnknownSession), "unknown_session");
  EXPECT_EQ(DropReasonName(DropReason::kReplayed), "replayed");
  EXPECT_EQ(DropReasonName(DropReason::kWrongDirection), "wrong_direction");
  EXPECT_EQ(DropReasonName(DropReason::kServiceNotAllowed), "service_not_allowed");
  EXPECT_EQ(DropReasonName(DropReason::kNoRoute), "no_route");
  EXPECT_EQ(DropReasonName(DropReason::kFlowLimit), "flow_limit");
  EXPECT_EQ(DropReasonName(DropReason::kNoBackend), "no_backend");
  EXPECT_EQ(DropReasonName(DropReason::kSendFailed), "send_failed");
  EXPECT_EQ(DropReasonName(static_cast<DropReason>(kDropReasonCount)), "unknown");
}

TEST(DropReasonTest, AllDropReasonsListsEachOnceInEnumOrder) {
  const auto& all = AllDropReasons();
  ASSERT_EQ(all.size(), kDropReasonCount);
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(static_cast<size_t>(all[i]), i);
}

TEST(DropReasonTest, EveryFrameErrorMapsToTheReasonWithTheSameLabel) {
  absl::flat_hash_set<DropReason> reasons;
  for (size_t i = 0; i < kFrameErrorCount; ++i) {
    const FrameError error = static_cast<FrameError>(i);
    const DropReason reason = ToDropReason(error);
    EXPECT_EQ(DropReasonName(reason), FrameErrorName(error));
    EXPECT_TRUE(reasons.insert(reason).second) << "two errors share " << DropReasonName(reason);
  }
}

TEST(DropCountersTest, StartAtZero) {
  DropCounters counters;
  for (DropReason reason : AllDropReasons()) EXPECT_EQ(counters.Get(reason), 0u);
  EXPECT_EQ(counters.Total(), 0u);
}

TEST(DropCountersTest, IncrementTouchesOnlyItsReason) {
  DropCounters counters;
  counters.Increment(DropReason::kBadTag);
  counters.Increment(DropReason::kBadTag);
  counters.Increment(DropReason::kReplayed, 5);
  counters.Increment(DropReason::kSendFailed, 0);
  EXPECT_EQ(counters.Get(DropReason::kBadTag), 2u);
  EXPECT_EQ(counters.Get(DropReason::kReplayed), 5u);
  EXPECT_EQ(counters.Total(), 7u);
  const std::array<uint64_t, kDropReasonCount> snapshot = counters.Snapshot();
  for (DropReason reason : AllDropReasons()) {
    EXPECT_EQ(snapshot[static_cast<size_t>(reason)], counters.Get(reason))
        << DropReasonName(reason);
  }
  EXPECT_EQ(snapshot[static_cast<size_t>(DropReason::kNoRoute)], 0u);
}

TEST(DropCountersTest, FirstAndLastSlotsAreDistinct) {
  DropCounters counters;
  counters.Increment(AllDropReasons().front(), 3);
  counters.Increment(AllDropReasons().back(), 4);
  EXPECT_EQ(counters.Get(AllDropReasons().front()), 3u);
  EXPECT_EQ(counters.Get(AllDropReasons().back()), 4u);
  EXPECT_EQ(counters.Total(), 7u);
}

TEST(DropCountersTest, AReaderThreadSeesMonotonicCountsAndTheFinalTotal) {
  // One worker writes, one metrics thread reads: the documented pattern. Under
  // --config=tsan this also proves the pair is free of data races.
  DropCounters counters;
  constexpr uint64_t kRounds = 100000;
  std::atomic<bool> done{false};
  std::atomic<bool> reading{false};
  std::thread reader([&] {
    std::array<uint64_t, kDropReasonCount> last = {};
    while (!done.load(std::memory_order_acquire)) {
      reading.store(true, std::memory_order_release);
      const std::array<uint64_t, kDropReasonCount> now = counters.Snapshot();
      for (size_t i = 0; i < kDropReasonCount; ++i) {
        ASSERT_GE(now[i], last[i]) << DropReasonName(static_cast<DropReason>(i));
      }
      last = now;
    }
  });
  // Start writing only once the reader runs, so the two really overlap.
  while (!reading.load(std::memory_order_acquire)) std::this_thread::yield();
  for (uint64_t round = 0; round < kRounds; ++round) {
    counters.Increment(static_cast<DropReason>(round % kDropReasonCount));
  }
  done.store(true, std::memory_order_release);
  reader.join();
  EXPECT_EQ(counters.Total(), kRounds);
  EXPECT_EQ(counters.Get(static_cast<DropReason>(0)),
            (kRounds + kDropReasonCount - 1) / kDropReasonCount);
}

}  // namespace
}  // namespace ferry::dataplane
