#include "controlplane/testing/state_store_conformance.h"

#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"

namespace ferry::controlplane {

std::string StateStoreFactoryName(const ::testing::TestParamInfo<StateStoreFactory>& info) {
  return info.param.name;
}

void StateStoreConformanceTest::SetUp() {
  store_ = GetParam().make();
  ASSERT_NE(store_, nullptr) << "factory " << GetParam().name << " made no store";
}

namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Optional;

// Collects the events a watch delivers.
// (std::mutex, which ThreadSanitizer sees without help; see common/mutex_lock.h.)
class EventLog {
 public:
  StateStore::WatchCallback Callback() {
    return [this](const WatchEvent& event) {
      std::lock_guard<std::mutex> lock(mu_);
      events_.push_back(event);
    };
  }
  std::vector<WatchEvent> events() const {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<WatchEvent> events_;
};

WatchEvent PutEvent(std::string key, std::string value, int64_t revision) {
  return WatchEvent{ChangeType::kPut, std::move(key), std::move(value), revision};
}

WatchEvent DeleteEvent(std::string key, int64_t revision) {
  return WatchEvent{ChangeType::kDelete, std::move(key), "", revision};
}

// The revision of the next write, learned by watching one.
int64_t NextRevision(StateStore& store) {
  EventLog log;
  const WatchId id = store.Watch("/conformance-probe", log.Callback());
  EXPECT_TRUE(store.Put("/conformance-probe", "x").ok());
  store.Unwatch(id);
  EXPECT_EQ(log.events().size(), 1u);
  return log.events().empty() ? 0 : log.events().front().revision + 1;
}

TEST_P(StateStoreConformanceTest, GetOfMissingKeyIsNullopt) {
  absl::StatusOr<std::optional<std::string>> got = store_->Get("/services/t/missing");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, std::nullopt);
}

TEST_P(StateStoreConformanceTest, PutThenGetReturnsLatestValue) {
  ASSERT_TRUE(store_->Put("/services/t/a", "one").ok());
  EXPECT_THAT(*store_->Get("/services/t/a"), Optional(std::string("one")));
  ASSERT_TRUE(store_->Put("/services/t/a", "two").ok());
  EXPECT_THAT(*store_->Get("/services/t/a"), Optional(std::string("two")));
}

TEST_P(StateStoreConformanceTest, ValuesAreOpaqueBytes) {
  const std::string binary("\0\xff\x01\n\0end", 8);
  const std::string large(1 << 20, '\xab');
  ASSERT_TRUE(store_->Put("/bin", binary).ok());
  ASSERT_TRUE(store_->Put("/large", large).ok());
  ASSERT_TRUE(store_->Put("/empty", "").ok());
  EXPECT_THAT(*store_->Get("/bin"), Optional(binary));
  EXPECT_THAT(*store_->Get("/large"), Optional(large));
  EXPECT_THAT(*store_->Get("/empty"), Optional(std::string()));
}

TEST_P(StateStoreConformanceTest, ListReturnsPrefixMatchesSortedByKey) {
  for (const char* key : {"/services/t/b", "/servicesX", "/services/t/a/x", "/service",
                          "/services/t/a", "/services/u/a", "/leases/t/a"}) {
    ASSERT_TRUE(store_->Put(key, absl::StrCat("v", key)).ok());
  }
  EXPECT_THAT(*store_->List("/services/t/"),
              ElementsAre(KeyValue{"/services/t/a", "v/services/t/a"},
                          KeyValue{"/services/t/a/x", "v/services/t/a/x"},
                          KeyValue{"/services/t/b", "v/services/t/b"}));
  EXPECT_THAT(*store_->List("/services/t/a"),
              ElementsAre(KeyValue{"/services/t/a", "v/services/t/a"},
                          KeyValue{"/services/t/a/x", "v/services/t/a/x"}));
  EXPECT_THAT(*store_->List("/nothing/"), IsEmpty());
  absl::StatusOr<std::vector<KeyValue>> all = store_->List("");
  ASSERT_TRUE(all.ok());
  std::vector<std::string> keys;
  for (const KeyValue& kv : *all) keys.push_back(kv.key);
  EXPECT_THAT(keys, ElementsAre("/leases/t/a", "/service", "/services/t/a", "/services/t/a/x",
                                "/services/t/b", "/services/u/a", "/servicesX"));
}

TEST_P(StateStoreConformanceTest, DeleteRemovesKeyAndDeletingMissingKeyIsOk) {
  ASSERT_TRUE(store_->Put("/k", "v").ok());
  ASSERT_TRUE(store_->Delete("/k").ok());
  EXPECT_EQ(*store_->Get("/k"), std::nullopt);
  EXPECT_TRUE(store_->Delete("/k").ok());
  EXPECT_TRUE(store_->Delete("/never-existed").ok());
  EXPECT_THAT(*store_->List(""), IsEmpty());
}

TEST_P(StateStoreConformanceTest, EmptyKeyIsInvalidArgumentAndChangesNothing) {
  ASSERT_TRUE(store_->Put("/keep", "v").ok());
  EXPECT_EQ(store_->Get("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Put("", "v").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Delete("").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->CompareAndSwap("", std::nullopt, "v").status().code(),
            absl::StatusCode::kInvalidArgument);
  const absl::Status batch =
      store_->Apply({Mutation::Put("/a", "1"), Mutation::Delete("/keep"), Mutation::Put("", "x")});
  EXPECT_EQ(batch.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(batch.message()), ::testing::HasSubstr("mutation 2"));
  EXPECT_THAT(*store_->List(""), ElementsAre(KeyValue{"/keep", "v"}));
}

struct CasCase {
  const char* name;
  std::optional<std::string> initial;
  std::optional<std::string> expected;
  std::optional<std::string> desired;
  bool swapped;
  std::optional<std::string> final_value;
};

TEST_P(StateStoreConformanceTest, CompareAndSwapFollowsExpectedValue) {
  const std::optional<std::string> absent;
  const CasCase cases[] = {
      {"absent, expect absent, put", absent, absent, "new", true, "new"},
      {"absent, expect absent, delete", absent, absent, absent, true, absent},
      {"absent, expect value", absent, "old", "new", false, absent},
      {"absent, expect empty value", absent, "", "new", false, absent},
      {"present, expect absent", "old", absent, "new", false, "old"},
      {"present, expect it, put", "old", "old", "new", true, "new"},
      {"present, expect it, same value", "old", "old", "old", true, "old"},
      {"present, expect it, delete", "old", "old", absent, true, absent},
      {"present, expect other", "old", "other", "new", false, "old"},
      {"present, expect empty value", "old", "", "new", false, "old"},
      {"empty value, expect absent", "", absent, "new", false, ""},
      {"empty value, expect it", "", "", "new", true, "new"},
  };
  int i = 0;
  for (const CasCase& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string key = absl::StrCat("/cas/", i++);
    if (c.initial.has_value()) {
      ASSERT_TRUE(store_->Put(key, *c.initial).ok());
    }
    absl::StatusOr<bool> swapped = store_->CompareAndSwap(key, c.expected, c.desired);
    ASSERT_TRUE(swapped.ok()) << swapped.status();
    EXPECT_EQ(*swapped, c.swapped);
    EXPECT_EQ(*store_->Get(key), c.final_value);
  }
}

TEST_P(StateStoreConformanceTest, ApplyRunsMutationsInOrder) {
  ASSERT_TRUE(store_->Put("/b", "old").ok());
  ASSERT_TRUE(
      store_
          ->Apply({Mutation::Put("/a", "1"), Mutation::Put("/a", "2"), Mutation::Delete("/b"),
                   Mutation::Put("/c", "3"), Mutation::Delete("/c"), Mutation::Put("/c", "4")})
          .ok());
  EXPECT_THAT(*store_->List(""), ElementsAre(KeyValue{"/a", "2"}, KeyValue{"/c", "4"}));
  EXPECT_TRUE(store_->Apply({}).ok());
}

TEST_P(StateStoreConformanceTest, ApplyIsOneRevisionWithOneEventPerChange) {
  ASSERT_TRUE(store_->Put("/b", "old").ok());
  const int64_t revision = NextRevision(*store_);
  EventLog log;
  store_->Watch("/", log.Callback());
  ASSERT_TRUE(store_
                  ->Apply({Mutation::Put("/a", "1"), Mutation::Delete("/b"),
                           Mutation::Delete("/missing"), Mutation::Put("/a", "2")})
                  .ok());
  EXPECT_THAT(log.events(), ElementsAre(PutEvent("/a", "1", revision), DeleteEvent("/b", revision),
                                        PutEvent("/a", "2", revision)));
}

TEST_P(StateStoreConformanceTest, ReadersNeverSeeHalfAnApply) {
  // Every batch moves one unit between /x and /y, so every consistent view sums to 100.
  ASSERT_TRUE(store_->Apply({Mutation::Put("/x", "100"), Mutation::Put("/y", "0")}).ok());
  std::atomic<bool> done{false};
  std::atomic<int> torn_views{0};
  std::thread reader([&] {
    while (!done.load()) {
      absl::StatusOr<std::vector<KeyValue>> view = store_->List("/");
      if (!view.ok() || view->size() != 2 ||
          std::stoi((*view)[0].value) + std::stoi((*view)[1].value) != 100) {
        ++torn_views;
      }
    }
  });
  for (int i = 1; i <= 100; ++i) {
    ASSERT_TRUE(store_
                    ->Apply({Mutation::Put("/x", std::to_string(100 - i)),
                             Mutation::Put("/y", std::to_string(i))})
                    .ok());
  }
  done = true;
  reader.join();
  EXPECT_EQ(torn_views.load(), 0);
  EXPECT_THAT(*store_->List("/"), ElementsAre(KeyValue{"/x", "0"}, KeyValue{"/y", "100"}));
}

TEST_P(StateStoreConformanceTest, WatchDeliversChangesUnderItsPrefixOnly) {
  const int64_t first = NextRevision(*store_);
  EventLog services;
  EventLog all;
  store_->Watch("/services/", services.Callback());
  store_->Watch("", all.Callback());
  ASSERT_TRUE(store_->Put("/services/t/a", "1").ok());               // first
  ASSERT_TRUE(store_->Put("/leases/t/a", "10.0.0.1").ok());          // first + 1
  ASSERT_TRUE(store_->Put("/services/t/a", "1").ok());               // same value: a change
  ASSERT_TRUE(store_->Delete("/services/t/missing").ok());           // no change, no revision
  ASSERT_FALSE(*store_->CompareAndSwap("/services/t/a", "x", "y"));  // no change, no revision
  ASSERT_TRUE(*store_->CompareAndSwap("/services/t/b", std::nullopt, "2"));  // first + 3
  ASSERT_TRUE(store_->Delete("/services/t/a").ok());                         // first + 4
  EXPECT_THAT(services.events(), ElementsAre(PutEvent("/services/t/a", "1", first),
                                             PutEvent("/services/t/a", "1", first + 2),
                                             PutEvent("/services/t/b", "2", first + 3),
                                             DeleteEvent("/services/t/a", first + 4)));
  EXPECT_EQ(all.events().size(), 5u);
  EXPECT_EQ(all.events()[1], PutEvent("/leases/t/a", "10.0.0.1", first + 1));
}

TEST_P(StateStoreConformanceTest, WatchCallbackRunsOnWriterThreadAfterChangeIsVisible) {
  std::thread::id callback_thread;
  std::optional<std::string> seen_by_get;
  store_->Watch("/k", [&](const WatchEvent&) {
    callback_thread = std::this_thread::get_id();
    seen_by_get = *store_->Get("/k");
  });
  std::thread writer([&] {
    ASSERT_TRUE(store_->Put("/k", "v").ok());
    // The writer's call returned: its callback has run.
    EXPECT_EQ(callback_thread, std::this_thread::get_id());
    EXPECT_THAT(seen_by_get, Optional(std::string("v")));
  });
  writer.join();
}

TEST_P(StateStoreConformanceTest, CallbackMayWriteAndItsEventFollowsInOrder) {
  const int64_t first = NextRevision(*store_);
  EventLog log;
  store_->Watch("/", log.Callback());
  // A watcher that reacts to a registration by allocating something for it.
  store_->Watch("/services/", [&](const WatchEvent& event) {
    if (event.type == ChangeType::kPut) {
      ASSERT_TRUE(store_->Put("/leases/" + event.key.substr(10), "allocated").ok());
      EXPECT_THAT(*store_->Get("/leases/" + event.key.substr(10)),
                  Optional(std::string("allocated")));
    }
  });
  ASSERT_TRUE(store_->Put("/services/t/a", "spec").ok());
  EXPECT_THAT(log.events(), ElementsAre(PutEvent("/services/t/a", "spec", first),
                                        PutEvent("/leases/t/a", "allocated", first + 1)));
}

TEST_P(StateStoreConformanceTest, UnwatchStopsDelivery) {
  EventLog log;
  const WatchId id = store_->Watch("/", log.Callback());
  ASSERT_NE(id, kInvalidWatchId);
  ASSERT_TRUE(store_->Put("/a", "1").ok());
  store_->Unwatch(id);
  store_->Unwatch(id);  // again: ignored
  ASSERT_TRUE(store_->Put("/a", "2").ok());
  ASSERT_EQ(log.events().size(), 1u);
  EXPECT_EQ(log.events()[0].value, "1");
}

TEST_P(StateStoreConformanceTest, UnwatchFromInsideCallbackStopsLaterEvents) {
  int calls = 0;
  WatchId id = kInvalidWatchId;
  id = store_->Watch("/", [&](const WatchEvent&) {
    ++calls;
    store_->Unwatch(id);
  });
  // One write with two changes: the second is not delivered once the first unwatched.
  ASSERT_TRUE(store_->Apply({Mutation::Put("/a", "1"), Mutation::Put("/b", "2")}).ok());
  ASSERT_TRUE(store_->Put("/c", "3").ok());
  EXPECT_EQ(calls, 1);
}

TEST_P(StateStoreConformanceTest, ConcurrentWritesReachWatchersInRevisionOrder) {
  constexpr int kThreads = 4;
  constexpr int kWritesPerThread = 50;
  EventLog log;
  store_->Watch("/", log.Callback());
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kWritesPerThread; ++i) {
        EXPECT_TRUE(store_->Put(absl::StrCat("/t", t, "/", i), "v").ok());
      }
    });
  }
  for (std::thread& w : writers) w.join();
  const std::vector<WatchEvent> events = log.events();
  ASSERT_EQ(events.size(), size_t{kThreads * kWritesPerThread});
  for (size_t i = 1; i < events.size(); ++i) {
    ASSERT_EQ(events[i].revision, events[i - 1].revision + 1) << "at event " << i;
  }
}

TEST_P(StateStoreConformanceTest, CompareAndSwapRaceClaimsEachKeyExactlyOnce) {
  constexpr int kThreads = 8;
  constexpr int kKeys = 64;
  // wins[t][k]: thread t's CompareAndSwap on key k returned true (char, not a packed bool, so
  // that threads write separate bytes).
  std::vector<std::vector<char>> wins(kThreads, std::vector<char>(kKeys, 0));
  std::atomic<int> errors{0};
  std::vector<std::thread> racers;
  for (int t = 0; t < kThreads; ++t) {
    racers.emplace_back([&, t] {
      for (int i = 0; i < kKeys; ++i) {
        const int k = (i + t * 7) % kKeys;  // each thread walks the keys from its own start
        absl::StatusOr<bool> won =
            store_->CompareAndSwap(absl::StrCat("/vip/", k), std::nullopt, absl::StrCat("t", t));
        if (!won.ok()) ++errors;
        wins[t][k] = won.ok() && *won;
      }
    });
  }
  for (std::thread& r : racers) r.join();
  ASSERT_EQ(errors.load(), 0);
  for (int k = 0; k < kKeys; ++k) {
    int winners = 0;
    int winner = -1;
    for (int t = 0; t < kThreads; ++t) {
      if (wins[t][k]) {
        ++winners;
        winner = t;
      }
    }
    ASSERT_EQ(winners, 1) << "key " << k;
    EXPECT_THAT(*store_->Get(absl::StrCat("/vip/", k)), Optional(absl::StrCat("t", winner)));
  }
}

}  // namespace
}  // namespace ferry::controlplane
