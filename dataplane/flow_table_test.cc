#include "dataplane/flow_table.h"

#include <algorithm>
#include <bitset>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "dataplane/testing/allocation_counter.h"
#include "gtest/gtest.h"

namespace ferry::dataplane {
namespace {

constexpr uint64_t kSeed = 0x5EED5EED12345678ULL;

// What a worker might keep per flow: plain data, allocation-free.
struct TestValue {
  uint64_t bytes = 0;
  uint32_t upstream_flow_id = 0;
  int fd = -1;
};

FlowTableOptions Options(size_t capacity, size_t max_per_session = 4096) {
  FlowTableOptions options;
  options.capacity = capacity;
  options.max_flows_per_session = max_per_session;
  options.hash_seed = kSeed;
  return options;
}

FlowHandle MustInsert(FlowTable<TestValue>& table, const FlowKey& key, int64_t now_ns = 0) {
  FlowInsertResult result;
  const FlowHandle h = table.Insert(key, now_ns, &result);
  EXPECT_EQ(result, FlowInsertResult::kInserted)
      << "session " << key.session_id << " flow " << key.flow_id;
  return h;
}

size_t HomeBucket(const FlowTable<TestValue>& table, const FlowKey& key) {
  int bits = 0;
  while ((size_t{1} << bits) < table.index_buckets()) ++bits;
  return static_cast<size_t>(HashFlowKey(key, table.hash_seed()) >> (64 - bits));
}

TEST(FlowTableOptionsTest, ValidateNamesTheBadField) {
  struct Case {
    std::string name;
    size_t capacity;
    size_t max_per_session;
    absl::StatusCode code;
    std::string mentions;
  };
  const std::vector<Case> cases = {
      {"default-like", 65536, 4096, absl::StatusCode::kOk, ""},
      {"one slot", 1, 1, absl::StatusCode::kOk, ""},
      {"largest", FlowTableOptions::kMaxCapacity, 1, absl::StatusCode::kOk, ""},
      {"zero capacity", 0, 1, absl::StatusCode::kInvalidArgument, "capacity"},
      {"too large", FlowTableOptions::kMaxCapacity + 1, 1, absl::StatusCode::kInvalidArgument,
       "capacity"},
      {"zero per session", 16, 0, absl::StatusCode::kInvalidArgument, "max_flows_per_session"},
  };
  for (const Case& c : cases) {
    FlowTableOptions options;
    options.capacity = c.capacity;
    options.max_flows_per_session = c.max_per_session;
    const absl::Status status = ValidateFlowTableOptions(options);
    EXPECT_EQ(status.code(), c.code) << c.name << ": " << status;
    EXPECT_NE(status.message().find(c.mentions), std::string::npos) << c.name << ": " << status;
  }
}

TEST(FlowTableDeathTest, ConstructorRefusesZeroCapacity) {
  EXPECT_DEATH(FlowTable<TestValue> table(Options(0)), "capacity");
}

TEST(FlowTableTest, IndexIsAPowerOfTwoAtLeastTwiceTheCapacity) {
  for (size_t capacity : {1, 2, 3, 8, 1000, 4097}) {
    FlowTable<TestValue> table(Options(capacity));
    const size_t buckets = table.index_buckets();
    EXPECT_EQ(buckets & (buckets - 1), 0u) << capacity;
    EXPECT_GE(buckets, 2 * capacity) << capacity;
    EXPECT_LT(buckets, 4 * capacity) << capacity;
    EXPECT_EQ(table.capacity(), capacity);
    EXPECT_EQ(table.size(), 0u);
  }
}

TEST(FlowTableTest, ZeroSeedPicksARandomOne) {
  FlowTableOptions options = Options(4);
  options.hash_seed = 0;
  FlowTable<TestValue> a(options);
  FlowTable<TestValue> b(options);
  EXPECT_NE(a.hash_seed(), 0u);
  EXPECT_NE(a.hash_seed(), b.hash_seed());
  FlowTable<TestValue> fixed(Options(4));
  EXPECT_EQ(fixed.hash_seed(), kSeed);
}

TEST(FlowTableTest, InsertFindEraseSequence) {
  // Each step runs one operation on the same table and states what it must return.
  enum class Op { kInsert, kFind, kErase };
  struct Step {
    Op op;
    FlowKey key;
    FlowInsertResult insert_result;  // kInsert
    bool present;                    // kFind: found; kErase: erased
    size_t size_after;
  };
  const FlowKey a{1, 1}, b{1, 2}, c{2, 1} /* b with its fields swapped */, d{0, 0};
  const std::vector<Step> steps = {
      {Op::kFind, a, {}, false, 0},
      {Op::kInsert, a, FlowInsertResult::kInserted, true, 1},
      {Op::kFind, a, {}, true, 1},
      {Op::kFind, b, {}, false, 1},
      {Op::kInsert, a, FlowInsertResult::kExists, true, 1},
      {Op::kInsert, b, FlowInsertResult::kInserted, true, 2},
      {Op::kInsert, c, FlowInsertResult::kInserted, true, 3},
      {Op::kInsert, d, FlowInsertResult::kInserted, true, 4},  // all-zero key is an ordinary key
      {Op::kErase, b, {}, true, 3},
      {Op::kFind, b, {}, false, 3},
      {Op::kErase, b, {}, false, 3},
      {Op::kFind, a, {}, true, 3},
      {Op::kFind, c, {}, true, 3},
      {Op::kFind, d, {}, true, 3},
      {Op::kInsert, b, FlowInsertResult::kInserted, true, 4},
      {Op::kErase, a, {}, true, 3},
      {Op::kErase, c, {}, true, 2},
      {Op::kErase, d, {}, true, 1},
      {Op::kErase, b, {}, true, 0},
  };
  FlowTable<TestValue> table(Options(8));
  absl::flat_hash_map<FlowKey, FlowHandle> handles;
  for (size_t i = 0; i < steps.size(); ++i) {
    const Step& s = steps[i];
    SCOPED_TRACE(testing::Message() << "step " << i);
    switch (s.op) {
      case Op::kInsert: {
        FlowInsertResult result;
        const FlowHandle h = table.Insert(s.key, 100, &result);
        EXPECT_EQ(result, s.insert_result);
        ASSERT_NE(h, kNoFlow);
        EXPECT_EQ(table.key(h), s.key);
        if (result == FlowInsertResult::kExists) {
          EXPECT_EQ(h, handles[s.key]);
        }
        handles[s.key] = h;
        break;
      }
      case Op::kFind: {
        const FlowHandle h = table.Find(s.key);
        EXPECT_EQ(h != kNoFlow, s.present);
        if (s.present) {
          EXPECT_EQ(h, handles[s.key]);
        }
        break;
      }
      case Op::kErase: {
        // A stale handle (the flow was erased and its slot not reused) must be refused.
        EXPECT_EQ(table.Erase(handles[s.key]), s.present);
        break;
      }
    }
    EXPECT_EQ(table.size(), s.size_after);
  }
}

TEST(FlowTableTest, InsertOfALiveKeyLeavesTheFlowAlone) {
  FlowTable<TestValue> table(Options(4));
  const FlowHandle h = MustInsert(table, {7, 7}, 100);
  table.value(h).bytes = 1234;
  FlowInsertResult result;
  EXPECT_EQ(table.Insert({7, 7}, 999, &result), h);
  EXPECT_EQ(result, FlowInsertResult::kExists);
  EXPECT_EQ(table.value(h).bytes, 1234u);
  EXPECT_EQ(table.last_active_ns(h), 100);
  EXPECT_EQ(table.flows_of_session(7), 1u);
}

TEST(FlowTableTest, InsertAndEraseResetTheValue) {
  FlowTable<TestValue> table(Options(1));
  const FlowHandle h = MustInsert(table, {1, 1});
  EXPECT_EQ(table.value(h).fd, -1);
  table.value(h) = TestValue{55, 66, 77};
  ASSERT_TRUE(table.Erase(h));
  EXPECT_EQ(table.value(h).bytes, 0u);
  EXPECT_EQ(table.value(h).fd, -1);
  // The only slot comes back for the next flow, with a fresh value and the new key.
  table.value(h).bytes = 99;  // a careless write to a freed slot must not leak into the next flow
  const FlowHandle again = MustInsert(table, {2, 2}, 500);
  EXPECT_EQ(again, h);
  EXPECT_EQ(table.value(again).bytes, 0u);
  EXPECT_EQ(table.key(again), (FlowKey{2, 2}));
  EXPECT_EQ(table.last_active_ns(again), 500);
}

TEST(FlowTableTest, EraseOfADeadHandleChangesNothing) {
  FlowTable<TestValue> table(Options(4));
  const FlowHandle a = MustInsert(table, {1, 1});
  MustInsert(table, {1, 2});
  ASSERT_TRUE(table.Erase(a));
  EXPECT_FALSE(table.Erase(a));
  EXPECT_FALSE(table.Erase(kNoFlow));
  EXPECT_FALSE(table.Erase(4));
  EXPECT_FALSE(table.Erase(3));  // in range, never used
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.flows_of_session(1), 1u);
  // Had the double erase freed the slot twice, two of these would share it.
  const FlowHandle x = MustInsert(table, {2, 1});
  const FlowHandle y = MustInsert(table, {2, 2});
  const FlowHandle z = MustInsert(table, {2, 3});
  EXPECT_EQ(absl::flat_hash_set<FlowHandle>({x, y, z, table.Find({1, 2})}).size(), 4u);
  FlowInsertResult result;
  EXPECT_EQ(table.Insert({2, 4}, 0, &result), kNoFlow);
  EXPECT_EQ(result, FlowInsertResult::kTableFull);
}

// Keys that share one home bucket form one probe chain; erasing any of them must leave the
// rest findable (backward-shift deletion), and erasing a key must not find it any more.
TEST(FlowTableTest, CollidingKeysStayFindableWhicheverIsErased) {
  constexpr size_t kChain = 6;
  FlowTable<TestValue> probe(Options(64));
  // Keys with the same home bucket as {9, 0}, found by trying flow ids.
  std::vector<FlowKey> chain = {{9, 0}};
  const size_t home = HomeBucket(probe, chain[0]);
  for (uint32_t f = 1; chain.size() < kChain; ++f) {
    if (HomeBucket(probe, {9, f}) == home) chain.push_back({9, f});
  }
  // And one key homed in the next bucket, which the chain pushes further along.
  FlowKey neighbour{10, 0};
  while (HomeBucket(probe, neighbour) != ((home + 1) & (probe.index_buckets() - 1))) {
    ++neighbour.flow_id;
  }

  for (size_t erased = 0; erased < kChain; ++erased) {
    SCOPED_TRACE(testing::Message() << "erasing chain key " << erased);
    FlowTable<TestValue> table(Options(64));
    std::vector<FlowHandle> handles;
    for (const FlowKey& key : chain) handles.push_back(MustInsert(table, key));
    const FlowHandle neighbour_handle = MustInsert(table, neighbour);
    ASSERT_TRUE(table.Erase(handles[erased]));
    EXPECT_EQ(table.Find(chain[erased]), kNoFlow);
    for (size_t i = 0; i < kChain; ++i) {
      if (i != erased) {
        EXPECT_EQ(table.Find(chain[i]), handles[i]) << "chain key " << i;
      }
    }
    EXPECT_EQ(table.Find(neighbour), neighbour_handle);
    // Re-inserting the erased key and erasing the others one by one keeps everything findable.
    handles[erased] = MustInsert(table, chain[erased]);
    for (size_t i = 0; i < kChain; ++i) {
      ASSERT_TRUE(table.Erase(handles[i]));
      for (size_t j = i + 1; j < kChain; ++j) EXPECT_EQ(table.Find(chain[j]), handles[j]);
      EXPECT_EQ(table.Find(neighbour), neighbour_handle);
    }
    EXPECT_EQ(table.size(), 1u);
  }
}

TEST(FlowTableTest, FullTableRefusesAndChangesNothing) {
  FlowTable<TestValue> table(Options(8));
  for (uint32_t f = 0; f < 8; ++f) MustInsert(table, {f % 3, f});
  FlowInsertResult result;
  EXPECT_EQ(table.Insert({1, 100}, 5, &result), kNoFlow);
  EXPECT_EQ(result, FlowInsertResult::kTableFull);
  EXPECT_EQ(table.Insert({77, 1}, 5, &result), kNoFlow);  // a new session too
  EXPECT_EQ(result, FlowInsertResult::kTableFull);
  EXPECT_EQ(table.size(), 8u);
  EXPECT_EQ(table.Find({1, 100}), kNoFlow);
  EXPECT_EQ(table.flows_of_session(1), 3u);
  EXPECT_EQ(table.flows_of_session(77), 0u);
  // A live key is still reported as existing when full.
  EXPECT_NE(table.Insert({0, 0}, 5, &result), kNoFlow);
  EXPECT_EQ(result, FlowInsertResult::kExists);
  // One erase makes room for exactly one.
  ASSERT_TRUE(table.Erase(table.Find({2, 2})));
  EXPECT_NE(table.Insert({1, 100}, 5, &result), kNoFlow);
  EXPECT_EQ(result, FlowInsertResult::kInserted);
  EXPECT_EQ(table.Insert({1, 101}, 5, &result), kNoFlow);
  EXPECT_EQ(result, FlowInsertResult::kTableFull);
}

TEST(FlowTableTest, SessionCapRefusesAndChangesNothing) {
  FlowTable<TestValue> table(Options(16, /*max_per_session=*/3));
  std::vector<FlowHandle> a;
  for (uint32_t f = 0; f < 3; ++f) a.push_back(MustInsert(table, {0xA, f}));
  FlowInsertResult result;
  EXPECT_EQ(table.Insert({0xA, 3}, 0, &result), kNoFlow);
  EXPECT_EQ(result, FlowInsertResult::kSessionLimit);
  EXPECT_EQ(table.size(), 3u);
  EXPECT_EQ(table.flows_of_session(0xA), 3u);
  EXPECT_EQ(table.Find({0xA, 3}), kNoFlow);
  // Other sessions are not affected; a live key of the capped session still reports kExists.
  for (uint32_t f = 0; f < 3; ++f) MustInsert(table, {0xB, f});
  EXPECT_EQ(table.Insert({0xA, 1}, 0, &result), a[1]);
  EXPECT_EQ(result, FlowInsertResult::kExists);
  // Erasing one of the session's flows lets it open one more.
  ASSERT_TRUE(table.Erase(a[0]));
  EXPECT_EQ(table.flows_of_session(0xA), 2u);
  MustInsert(table, {0xA, 3});
  EXPECT_EQ(table.Insert({0xA, 4}, 0, &result), kNoFlow);
  EXPECT_EQ(result, FlowInsertResult::kSessionLimit);
}

TEST(FlowTableTest, SessionCountsFollowInsertsAndErasesAcrossManySessions) {
  // More sessions than a small table has session buckets in one cluster: counts of colliding
  // sessions must stay apart, and a session whose count drops to 0 must leave without hiding
  // the others.
  FlowTable<TestValue> table(Options(64, /*max_per_session=*/4));
  std::vector<FlowHandle> handles;
  for (uint64_t s = 0; s < 32; ++s) {
    handles.push_back(MustInsert(table, {s * 0x1000, 0}));
    handles.push_back(MustInsert(table, {s * 0x1000, 1}));
  }
  for (uint64_t s = 0; s < 32; ++s) EXPECT_EQ(table.flows_of_session(s * 0x1000), 2u) << s;
  for (uint64_t s = 0; s < 32; s += 2) {
    ASSERT_TRUE(table.Erase(handles[2 * s]));
    ASSERT_TRUE(table.Erase(handles[2 * s + 1]));
  }
  for (uint64_t s = 0; s < 32; ++s) {
    EXPECT_EQ(table.flows_of_session(s * 0x1000), s % 2 == 0 ? 0u : 2u) << s;
  }
  EXPECT_EQ(table.flows_of_session(12345), 0u);
}

TEST(FlowTableTest, EraseHalfOfTenThousandRandomKeysKeepsTheRestFindable) {
  constexpr size_t kKeys = 10000;
  std::mt19937_64 rng(42);
  FlowTable<TestValue> table(Options(kKeys));
  std::vector<FlowKey> keys;
  absl::flat_hash_set<FlowKey> seen;
  while (keys.size() < kKeys) {
    // Few sessions, so that each session holds many flows, as on a busy relay.
    const FlowKey key{rng() % 8, static_cast<uint32_t>(rng())};
    if (seen.insert(key).second) keys.push_back(key);
  }
  std::vector<FlowHandle> handles;
  for (const FlowKey& key : keys) {
    handles.push_back(MustInsert(table, key));
    table.value(handles.back()).bytes = key.flow_id;
  }
  ASSERT_EQ(table.size(), kKeys);
  std::vector<size_t> order(kKeys);
  for (size_t i = 0; i < kKeys; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<bool> erased(kKeys, false);
  for (size_t n = 0; n < kKeys / 2; ++n) {
    ASSERT_TRUE(table.Erase(handles[order[n]]));
    erased[order[n]] = true;
  }
  EXPECT_EQ(table.size(), kKeys / 2);
  for (size_t i = 0; i < kKeys; ++i) {
    if (erased[i]) {
      EXPECT_EQ(table.Find(keys[i]), kNoFlow) << i;
    } else {
      ASSERT_EQ(table.Find(keys[i]), handles[i]) << i;
      EXPECT_EQ(table.value(handles[i]).bytes, keys[i].flow_id);
    }
  }
  size_t per_session_total = 0;
  for (uint64_t s = 0; s < 8; ++s) per_session_total += table.flows_of_session(s);
  EXPECT_EQ(per_session_total, kKeys / 2);
}

TEST(FlowTableTest, HandlesStayValidAcrossOtherErasures) {
  FlowTable<TestValue> table(Options(256));
  std::vector<FlowHandle> handles;
  for (uint32_t f = 0; f < 200; ++f) {
    handles.push_back(MustInsert(table, {f % 5, f}));
    table.value(handles.back()).upstream_flow_id = f + 1000;
  }
  for (uint32_t f = 0; f < 200; f += 3) ASSERT_TRUE(table.Erase(handles[f]));
  // New flows fill the freed slots; the survivors must not move.
  for (uint32_t f = 200; f < 250; ++f) MustInsert(table, {f % 5, f});
  for (uint32_t f = 0; f < 200; ++f) {
    if (f % 3 == 0) continue;
    EXPECT_EQ(table.Find({f % 5, f}), handles[f]) << f;
    EXPECT_EQ(table.key(handles[f]), (FlowKey{f % 5, f}));
    EXPECT_EQ(table.value(handles[f]).upstream_flow_id, f + 1000) << f;
  }
}

TEST(FlowTableTest, TouchMovesLastActive) {
  FlowTable<TestValue> table(Options(2));
  const FlowHandle h = MustInsert(table, {1, 1}, 10);
  EXPECT_EQ(table.last_active_ns(h), 10);
  table.Touch(h, 25);
  EXPECT_EQ(table.last_active_ns(h), 25);
}

TEST(FlowTableTest, SweepEvictsOnlyFlowsIdleForMoreThanIdleNs) {
  FlowTable<TestValue> table(Options(16));
  // (flow, last active); now = 1000, idle = 300: idle means last active < 700.
  struct Case {
    uint32_t flow;
    int64_t last_active;
    bool evicted;
  };
  const std::vector<Case> cases = {
      {1, 0, true},    {2, 699, true},   {3, 700, false},
      {4, 701, false}, {5, 1000, false}, {6, 1500, false},  // a clock ahead of now: not idle
  };
  for (const Case& c : cases) {
    const FlowHandle h = MustInsert(table, {3, c.flow}, 0);
    table.Touch(h, c.last_active);
    table.value(h).bytes = c.flow * 10;
  }
  absl::flat_hash_map<uint32_t, uint64_t> evicted;  // flow -> value seen by on_evict
  const size_t n =
      table.SweepIdle(1000, 300, 1000, [&](FlowHandle h, const FlowKey& key, TestValue& value) {
        EXPECT_EQ(table.key(h), key);
        evicted[key.flow_id] = value.bytes;
      });
  EXPECT_EQ(n, 2u);
  for (const Case& c : cases) {
    EXPECT_EQ(evicted.contains(c.flow), c.evicted) << c.flow;
    EXPECT_EQ(table.Find({3, c.flow}) == kNoFlow, c.evicted) << c.flow;
    if (c.evicted) {
      EXPECT_EQ(evicted[c.flow], c.flow * 10);
    }
  }
  EXPECT_EQ(table.size(), 4u);
  EXPECT_EQ(table.flows_of_session(3), 4u);
}

TEST(FlowTableTest, SweepWithABudgetContinuesWhereItStoppedAndWraps) {
  FlowTable<TestValue> table(Options(10));
  for (uint32_t f = 0; f < 10; ++f) ASSERT_EQ(MustInsert(table, {1, f}, 0), f);  // slot == f
  std::vector<FlowHandle> evicted;
  auto record = [&](FlowHandle h, const FlowKey&, TestValue&) { evicted.push_back(h); };

  EXPECT_EQ(table.SweepIdle(100, 10, 4, record), 4u);  // slots 0..3
  EXPECT_EQ(evicted, (std::vector<FlowHandle>{0, 1, 2, 3}));
  // Refill slots 0..3 with active flows.
  for (uint32_t f = 10; f < 14; ++f) MustInsert(table, {1, f}, 100);
  evicted.clear();
  EXPECT_EQ(table.SweepIdle(100, 10, 4, record), 4u);  // slots 4..7
  EXPECT_EQ(evicted, (std::vector<FlowHandle>{4, 5, 6, 7}));
  evicted.clear();
  EXPECT_EQ(table.SweepIdle(100, 10, 4, record), 2u);  // slots 8, 9, then 0, 1 (active)
  EXPECT_EQ(evicted, (std::vector<FlowHandle>{8, 9}));
  evicted.clear();
  EXPECT_EQ(table.SweepIdle(1000, 10, 3, record), 2u);  // slots 2, 3 (idle now), 4 (empty)
  EXPECT_EQ(evicted, (std::vector<FlowHandle>{2, 3}));
  EXPECT_EQ(table.size(), 2u);
}

TEST(FlowTableTest, SweepExaminesEachSlotAtMostOncePerCall) {
  FlowTable<TestValue> table(Options(10));
  for (uint32_t f = 0; f < 10; ++f) MustInsert(table, {1, f}, 100);
  auto none = [](FlowHandle, const FlowKey&, TestValue&) { ADD_FAILURE() << "nothing is idle"; };
  // A budget of 25 on 10 slots examines 10 and leaves the cursor where it started ...
  EXPECT_EQ(table.SweepIdle(100, 10, 25, none), 0u);
  // ... so the next sweep of one slot looks at slot 0 (25 would have left it at slot 5).
  std::vector<FlowHandle> evicted;
  EXPECT_EQ(
      table.SweepIdle(1000, 10, 1,
                      [&](FlowHandle h, const FlowKey&, TestValue&) { evicted.push_back(h); }),
      1u);
  EXPECT_EQ(evicted, (std::vector<FlowHandle>{0}));
}

TEST(FlowTableTest, SweepCallbackMayEraseTheFlowItIsGiven) {
  FlowTable<TestValue> table(Options(4));
  for (uint32_t f = 0; f < 4; ++f) MustInsert(table, {1, f}, 0);
  const size_t n = table.SweepIdle(
      100, 10, 4, [&](FlowHandle h, const FlowKey&, TestValue&) { EXPECT_TRUE(table.Erase(h)); });
  EXPECT_EQ(n, 4u);
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.flows_of_session(1), 0u);
  // Every slot was freed exactly once.
  for (uint32_t f = 0; f < 4; ++f) MustInsert(table, {2, f});
  FlowInsertResult result;
  EXPECT_EQ(table.Insert({2, 4}, 0, &result), kNoFlow);
  EXPECT_EQ(result, FlowInsertResult::kTableFull);
}

TEST(FlowTableTest, ForEachVisitsEveryLiveFlowAndMayEraseIt) {
  FlowTable<TestValue> table(Options(32));
  for (uint32_t f = 0; f < 20; ++f) MustInsert(table, {f % 2, f});
  for (uint32_t f = 0; f < 20; f += 5) ASSERT_TRUE(table.Erase(table.Find({f % 2, f})));
  absl::flat_hash_set<FlowKey> visited;
  table.ForEach([&](FlowHandle h, const FlowKey& key, TestValue&) {
    EXPECT_EQ(table.key(h), key);
    EXPECT_TRUE(visited.insert(key).second);
    if (key.session_id == 0) {  // e.g. session 0 closed
      EXPECT_TRUE(table.Erase(h));
    }
  });
  EXPECT_EQ(visited.size(), 16u);
  for (uint32_t f = 0; f < 20; ++f) {
    EXPECT_EQ(visited.contains(FlowKey{f % 2, f}), f % 5 != 0) << f;
  }
  EXPECT_EQ(table.size(), 8u);
  EXPECT_EQ(table.flows_of_session(0), 0u);
  EXPECT_EQ(table.flows_of_session(1), 8u);
}

TEST(FlowTableTest, SequentialFlowIdsChangeAboutHalfOfTheHashBits) {
  // The home bucket comes from the top bits: consecutive flow ids of one session must not
  // land in neighbouring buckets. For a mixing hash, consecutive keys differ in about 32 of 64
  // bits, and in about 16 of the top 32.
  uint64_t top_bits_changed = 0;
  constexpr uint32_t kPairs = 10000;
  for (uint32_t f = 0; f < kPairs; ++f) {
    const uint64_t x = HashFlowKey({0x1234, f}, kSeed) ^ HashFlowKey({0x1234, f + 1}, kSeed);
    top_bits_changed += std::bitset<32>(x >> 32).count();
  }
  const double mean = static_cast<double>(top_bits_changed) / kPairs;
  EXPECT_GT(mean, 15.0);
  EXPECT_LT(mean, 17.0);
  // The seed changes the hash of the same key.
  EXPECT_NE(HashFlowKey({1, 1}, 1), HashFlowKey({1, 1}, 2));
}

TEST(FlowTableTest, PerFrameCallsDoNotAllocate) {
  const long before_construction = test::AllocationCount();
  FlowTable<TestValue> table(Options(1024, /*max_per_session=*/64));
  // Without this the zero below could mean the counter was never linked in.
  ASSERT_GT(test::AllocationCount(), before_construction);
  // Keys laid out ahead, so that the measured loop allocates nothing itself.
  std::vector<FlowKey> keys;
  for (uint32_t i = 0; i < 2048; ++i) keys.push_back({i % 40, i * 7919});

  const long before = test::AllocationCount();
  size_t evicted = 0;
  for (int round = 0; round < 3; ++round) {
    const int64_t now = round * 1000;
    for (const FlowKey& key : keys) {  // fills the table, hits the session cap and kTableFull
      FlowInsertResult result;
      const FlowHandle h = table.Insert(key, now, &result);
      if (h != kNoFlow) table.Touch(h, now);
    }
    for (const FlowKey& key : keys) {
      const FlowHandle h = table.Find(key);
      if (h != kNoFlow && key.flow_id % 3 == 0) table.Erase(h);
    }
    evicted += table.SweepIdle(now + 1000, 500, 300, [](FlowHandle, const FlowKey&, TestValue&) {});
    table.ForEach([&](FlowHandle h, const FlowKey&, TestValue& v) {
      if (v.bytes++ > 1) table.Erase(h);
    });
  }
  EXPECT_EQ(test::AllocationCount(), before);
  EXPECT_GT(evicted, 0u);  // the sweep really ran its eviction path
}

// The model: what a plain map says the table must hold.
struct ModelFlow {
  FlowHandle handle;
  int64_t last_active;
  uint64_t bytes;
};

TEST(FlowTableTest, MatchesAFlatHashMapOverAHundredThousandRandomOperations) {
  constexpr size_t kCapacity = 256;
  constexpr size_t kPerSession = 48;
  constexpr int kOperations = 100000;
  FlowTable<TestValue> table(Options(kCapacity, kPerSession));
  absl::flat_hash_map<FlowKey, ModelFlow> model;
  absl::flat_hash_map<FlowHandle, FlowKey> by_handle;
  absl::flat_hash_map<uint64_t, size_t> per_session;
  size_t model_cursor = 0;  // where the table's sweep continues
  std::mt19937_64 rng(7);
  // 16 sessions x 96 flow ids, half of the operations on session 0: enough keys to fill the
  // table, and one session busy enough to hit its cap.
  auto random_key = [&] {
    const uint64_t session = rng() % 2 == 0 ? 0 : rng() % 16;
    return FlowKey{session * 0x9E3779B9ULL, static_cast<uint32_t>(rng() % 96)};
  };
  int64_t now = 0;
  size_t counts[4] = {};  // kInserted, kExists, kTableFull, kSessionLimit

  for (int op = 0; op < kOperations; ++op) {
    SCOPED_TRACE(testing::Message() << "operation " << op);
    now += static_cast<int64_t>(rng() % 3);
    const int kind = static_cast<int>(rng() % 100);
    const FlowKey key = random_key();
    auto it = model.find(key);
    if (kind < 45) {  // Insert
      FlowInsertResult result;
      const FlowHandle h = table.Insert(key, now, &result);
      FlowInsertResult expected;
      if (it != model.end()) {
        expected = FlowInsertResult::kExists;
      } else if (model.size() == kCapacity) {
        expected = FlowInsertResult::kTableFull;
      } else if (per_session[key.session_id] == kPerSession) {
        expected = FlowInsertResult::kSessionLimit;
      } else {
        expected = FlowInsertResult::kInserted;
      }
      ASSERT_EQ(result, expected);
      ++counts[static_cast<int>(result)];
      if (expected == FlowInsertResult::kExists) {
        ASSERT_EQ(h, it->second.handle);
      } else if (expected == FlowInsertResult::kInserted) {
        ASSERT_NE(h, kNoFlow);
        ASSERT_LT(h, kCapacity);
        ASSERT_FALSE(by_handle.contains(h)) << "handle " << h << " handed out twice";
        model[key] = ModelFlow{h, now, 0};
        by_handle[h] = key;
        ++per_session[key.session_id];
      } else {
        ASSERT_EQ(h, kNoFlow);
      }
    } else if (kind < 70) {  // Erase by key
      const FlowHandle h = table.Find(key);
      if (it == model.end()) {
        ASSERT_EQ(h, kNoFlow);
        continue;
      }
      ASSERT_EQ(h, it->second.handle);
      ASSERT_TRUE(table.Erase(h));
      ASSERT_FALSE(table.Erase(h));
      by_handle.erase(h);
      --per_session[key.session_id];
      model.erase(it);
    } else if (kind < 96) {  // Find, check the value, write it, touch
      const FlowHandle h = table.Find(key);
      if (it == model.end()) {
        ASSERT_EQ(h, kNoFlow);
        continue;
      }
      ASSERT_EQ(h, it->second.handle);
      ASSERT_EQ(table.key(h), key);
      ASSERT_EQ(table.value(h).bytes, it->second.bytes);
      ASSERT_EQ(table.last_active_ns(h), it->second.last_active);
      it->second.bytes = rng();
      table.value(h).bytes = it->second.bytes;
      if (rng() % 2 == 0) {
        table.Touch(h, now);
        it->second.last_active = now;
      }
    } else {  // SweepIdle with a small budget
      const int64_t idle = static_cast<int64_t>(rng() % 4000);
      const size_t budget = rng() % 64;
      absl::flat_hash_set<FlowKey> expected;
      for (size_t n = 0; n < budget; ++n) {
        const FlowHandle slot = static_cast<FlowHandle>((model_cursor + n) % kCapacity);
        auto at = by_handle.find(slot);
        if (at != by_handle.end() && now - model[at->second].last_active > idle) {
          expected.insert(at->second);
        }
      }
      model_cursor = (model_cursor + budget) % kCapacity;
      absl::flat_hash_set<FlowKey> got;
      const size_t n =
          table.SweepIdle(now, idle, budget, [&](FlowHandle h, const FlowKey& k, TestValue& value) {
            EXPECT_EQ(model[k].handle, h);
            EXPECT_EQ(model[k].bytes, value.bytes);
            got.insert(k);
          });
      ASSERT_EQ(got, expected);
      ASSERT_EQ(n, expected.size());
      for (const FlowKey& k : got) {
        by_handle.erase(model[k].handle);
        --per_session[k.session_id];
        model.erase(k);
      }
    }
    ASSERT_EQ(table.size(), model.size());
    ASSERT_EQ(table.flows_of_session(key.session_id), per_session[key.session_id]);
  }

  // Every kind of insert outcome happened, so the comparison covered each path.
  for (size_t c : counts) EXPECT_GT(c, 0u);
  // Finally the whole table, both ways.
  size_t visited = 0;
  table.ForEach([&](FlowHandle h, const FlowKey& key, TestValue& value) {
    ++visited;
    auto it = model.find(key);
    ASSERT_NE(it, model.end());
    EXPECT_EQ(it->second.handle, h);
    EXPECT_EQ(it->second.bytes, value.bytes);
  });
  EXPECT_EQ(visited, model.size());
  for (const auto& [k, flow] : model) EXPECT_EQ(table.Find(k), flow.handle);
  for (const auto& [session, count] : per_session) {
    EXPECT_EQ(table.flows_of_session(session), count);
  }
}

}  // namespace
}  // namespace ferry::dataplane
