#include "controlplane/local_state_store.h"

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "controlplane/state_store.h"
#include "controlplane/state_table.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ferry::controlplane {
namespace {

using ::testing::ElementsAre;
using ::testing::Optional;

// Records what LocalStateStore hands to its durability hooks, and can fail Persist.
class RecordingStore final : public LocalStateStore {
 public:
  explicit RecordingStore(StateTable initial) : LocalStateStore(std::move(initial)) {}

  struct Persisted {
    int64_t revision;
    std::vector<Mutation> changes;
    // Whether reads could already see the change while it was being persisted.
    bool visible_during_persist;
  };

  std::vector<Persisted> persisted;
  std::vector<int64_t> committed_revisions;
  absl::Status persist_error;

  using LocalStateStore::WithWritesPaused;

 private:
  absl::Status Persist(int64_t revision, const std::vector<Mutation>& changes) override {
    // Reads are not blocked by a write in progress, and do not see it yet.
    const bool visible = Get(changes.front().key)->has_value() &&
                         changes.front().type == ChangeType::kPut &&
                         *Get(changes.front().key) == changes.front().value;
    persisted.push_back({revision, changes, visible});
    return persist_error;
  }
  void Committed(const StateTable& table) override {
    committed_revisions.push_back(table.revision());
  }
};

TEST(LocalStateStoreTest, PersistsEachChangingWriteBeforeItIsVisible) {
  RecordingStore store(StateTable(4, {{"/old", "x"}}));
  ASSERT_TRUE(store.Put("/a", "1").ok());
  ASSERT_TRUE(store.Delete("/missing").ok());                    // no change: not persisted
  ASSERT_FALSE(*store.CompareAndSwap("/a", std::nullopt, "2"));  // no change: not persisted
  ASSERT_TRUE(store.Apply({Mutation::Delete("/old"), Mutation::Delete("/none")}).ok());
  ASSERT_EQ(store.persisted.size(), 2u);
  EXPECT_EQ(store.persisted[0].revision, 5);
  EXPECT_THAT(store.persisted[0].changes, ElementsAre(Mutation::Put("/a", "1")));
  EXPECT_FALSE(store.persisted[0].visible_during_persist);
  EXPECT_EQ(store.persisted[1].revision, 6);
  EXPECT_THAT(store.persisted[1].changes, ElementsAre(Mutation::Delete("/old")));
  EXPECT_THAT(store.committed_revisions, ElementsAre(5, 6));
  EXPECT_EQ(store.revision(), 6);
}

TEST(LocalStateStoreTest, FailedPersistChangesNothing) {
  RecordingStore store{StateTable()};
  int events = 0;
  store.Watch("", [&](const WatchEvent&) { ++events; });
  store.persist_error = absl::ResourceExhaustedError("disk full");
  EXPECT_EQ(store.Put("/a", "1").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(store.CompareAndSwap("/a", std::nullopt, "1").status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(*store.Get("/a"), std::nullopt);
  EXPECT_EQ(store.revision(), 0);
  EXPECT_EQ(events, 0);
  EXPECT_TRUE(store.committed_revisions.empty());

  store.persist_error = absl::OkStatus();
  ASSERT_TRUE(store.Put("/a", "1").ok());
  EXPECT_EQ(store.revision(), 1);  // the failed writes took no revision
  EXPECT_EQ(events, 1);
}

TEST(LocalStateStoreTest, WithWritesPausedSeesTheCurrentTable) {
  RecordingStore store{StateTable()};
  ASSERT_TRUE(store.Put("/a", "1").ok());
  std::optional<std::string> seen;
  const absl::Status status = store.WithWritesPaused([&](const StateTable& table) {
    seen = table.Get("/a");
    return absl::UnavailableError("passed through");
  });
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(seen, Optional(std::string("1")));
}

}  // namespace
}  // namespace ferry::controlplane
