#include "controlplane/testing/in_memory_state_store.h"

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "controlplane/state_store.h"
#include "controlplane/testing/state_store_conformance.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ferry::controlplane {
namespace {

using ::testing::Optional;

INSTANTIATE_TEST_SUITE_P(InMemory, StateStoreConformanceTest,
                         ::testing::Values(StateStoreFactory{
                             "InMemory", [] { return std::make_unique<InMemoryStateStore>(); }}),
                         StateStoreFactoryName);

TEST(InMemoryStateStoreTest, SetWriteErrorFailsChangingWritesUntilCleared) {
  InMemoryStateStore store;
  ASSERT_TRUE(store.Put("/a", "1").ok());
  int events = 0;
  store.Watch("/", [&](const WatchEvent&) { ++events; });

  store.SetWriteError(absl::UnavailableError("etcd unreachable"));
  EXPECT_EQ(store.Put("/a", "2").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store.Delete("/a").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store.CompareAndSwap("/a", "1", "3").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store.Apply({Mutation::Put("/b", "1")}).code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(*store.Get("/a"), Optional(std::string("1")));
  EXPECT_EQ(*store.Get("/b"), std::nullopt);
  EXPECT_EQ(store.revision(), 1);
  EXPECT_EQ(events, 0);

  store.SetWriteError(absl::OkStatus());
  EXPECT_TRUE(store.Put("/a", "2").ok());
  EXPECT_THAT(*store.Get("/a"), Optional(std::string("2")));
  EXPECT_EQ(events, 1);
}

}  // namespace
}  // namespace ferry::controlplane
