#include "controlplane/state_table.h"

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "controlplane/state_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ferry::controlplane {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

StateTable TableWith(StateEntries entries) { return StateTable(7, std::move(entries)); }

TEST(StateTableTest, ChangesKeepPutsAndOnlyDeletesOfKeysThatExistAtThatPoint) {
  const StateTable table = TableWith({{"/present", "v"}});
  struct Case {
    const char* name;
    std::vector<Mutation> batch;
    std::vector<Mutation> changes;
  };
  const Case cases[] = {
      {"empty batch", {}, {}},
      {"delete missing", {Mutation::Delete("/missing")}, {}},
      {"delete present", {Mutation::Delete("/present")}, {Mutation::Delete("/present")}},
      {"delete present twice",
       {Mutation::Delete("/present"), Mutation::Delete("/present")},
       {Mutation::Delete("/present")}},
      {"put then delete missing",
       {Mutation::Put("/new", "1"), Mutation::Delete("/new")},
       {Mutation::Put("/new", "1"), Mutation::Delete("/new")}},
      {"put same value", {Mutation::Put("/present", "v")}, {Mutation::Put("/present", "v")}},
      {"delete ignores stray value",
       {Mutation{ChangeType::kDelete, "/present", "stray"}},
       {Mutation::Delete("/present")}},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(table.Changes(c.batch), c.changes) << c.name;
  }
}

TEST(StateTableTest, CompareAndSwapChangesIsNulloptOnMismatch) {
  const StateTable table = TableWith({{"/k", "v"}});
  EXPECT_EQ(table.CompareAndSwapChanges("/k", std::nullopt, "x"), std::nullopt);
  EXPECT_EQ(table.CompareAndSwapChanges("/k", std::string("w"), "x"), std::nullopt);
  EXPECT_EQ(table.CompareAndSwapChanges("/missing", std::string("v"), "x"), std::nullopt);
  EXPECT_EQ(table.CompareAndSwapChanges("/k", std::string("v"), "x"),
            std::vector<Mutation>{Mutation::Put("/k", "x")});
  EXPECT_EQ(table.CompareAndSwapChanges("/k", std::string("v"), std::nullopt),
            std::vector<Mutation>{Mutation::Delete("/k")});
  EXPECT_EQ(table.CompareAndSwapChanges("/missing", std::nullopt, std::nullopt),
            std::vector<Mutation>{});
}

TEST(StateTableTest, CommitTakesNextRevisionAndReturnsEvents) {
  StateTable table = TableWith({{"/a", "1"}});
  const std::vector<WatchEvent> events =
      table.Commit({Mutation::Put("/b", "2"), Mutation::Delete("/a")});
  EXPECT_EQ(table.revision(), 8);
  EXPECT_THAT(events, ElementsAre(WatchEvent{ChangeType::kPut, "/b", "2", 8},
                                  WatchEvent{ChangeType::kDelete, "/a", "", 8}));
  EXPECT_THAT(table.List(""), ElementsAre(KeyValue{"/b", "2"}));
  // Replayed deletes of missing keys are harmless.
  table.Commit({Mutation::Delete("/a")});
  EXPECT_EQ(table.revision(), 9);
}

TEST(StateTableTest, ListStopsAtTheEndOfThePrefix) {
  const StateTable table =
      TableWith({{"/a", "1"}, {"/a/", "2"}, {"/a/b", "3"}, {"/a0", "4"}, {"/b", "5"}});
  EXPECT_THAT(table.List("/a/"), ElementsAre(KeyValue{"/a/", "2"}, KeyValue{"/a/b", "3"}));
  EXPECT_THAT(table.List("/c"), IsEmpty());
  EXPECT_EQ(table.List("").size(), 5u);
}

TEST(StateTableTest, ValidateMutationsNamesTheFirstBadIndex) {
  EXPECT_TRUE(ValidateMutations({Mutation::Put("/a", "")}).ok());
  const absl::Status status =
      ValidateMutations({Mutation::Put("/a", ""), Mutation::Delete(""), Mutation::Put("", "")});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), ::testing::StartsWith("mutation 1:"));
}

}  // namespace
}  // namespace ferry::controlplane
