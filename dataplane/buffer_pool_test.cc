#include "dataplane/buffer_pool.h"

#include <cstring>
#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace ferry::dataplane {
namespace {

TEST(BufferPoolTest, HandsOutEveryChunkThenReportsExhaustion) {
  BufferPool pool(/*chunk_size=*/64, /*chunk_count=*/3);
  EXPECT_EQ(pool.available(), 3u);
  std::set<Chunk*> seen;
  for (int i = 0; i < 3; ++i) {
    Chunk* chunk = pool.Acquire();
    ASSERT_NE(chunk, nullptr);
    EXPECT_NE(chunk->data, nullptr);
    EXPECT_EQ(chunk->size, 0u);
    EXPECT_EQ(chunk->offset, 0u);
    EXPECT_EQ(chunk->next, nullptr);
    seen.insert(chunk);
  }
  EXPECT_EQ(seen.size(), 3u);
  EXPECT_EQ(pool.available(), 0u);
  EXPECT_EQ(pool.exhausted_count(), 0u);

  EXPECT_EQ(pool.Acquire(), nullptr);
  EXPECT_EQ(pool.Acquire(), nullptr);
  EXPECT_EQ(pool.exhausted_count(), 2u);
  for (Chunk* chunk : seen) pool.Release(chunk);
  EXPECT_EQ(pool.available(), 3u);
}

TEST(BufferPoolTest, ReleasedChunkComesBackReset) {
  BufferPool pool(16, 1);
  Chunk* chunk = pool.Acquire();
  ASSERT_NE(chunk, nullptr);
  chunk->size = 10;
  chunk->offset = 4;
  pool.Release(chunk);
  EXPECT_EQ(pool.available(), 1u);
  Chunk* again = pool.Acquire();
  EXPECT_EQ(again, chunk);
  EXPECT_EQ(again->size, 0u);
  EXPECT_EQ(again->offset, 0u);
  pool.Release(again);
}

TEST(BufferPoolTest, ChunksDoNotOverlap) {
  constexpr size_t kSize = 100;
  constexpr size_t kCount = 8;
  BufferPool pool(kSize, kCount);
  std::vector<Chunk*> chunks;
  for (size_t i = 0; i < kCount; ++i) {
    chunks.push_back(pool.Acquire());
    std::memset(chunks.back()->data, static_cast<int>(i), kSize);
  }
  for (size_t i = 0; i < kCount; ++i) {
    for (size_t b = 0; b < kSize; ++b) {
      ASSERT_EQ(chunks[i]->data[b], i) << "chunk " << i << " byte " << b;
    }
  }
  for (Chunk* chunk : chunks) pool.Release(chunk);
}

TEST(BufferPoolTest, ReleaseOfNullIsANoOp) {
  BufferPool pool(16, 2);
  pool.Release(nullptr);
  EXPECT_EQ(pool.available(), 2u);
}

TEST(BufferPoolDeathTest, DoubleReleaseDies) {
  BufferPool pool(16, 2);
  Chunk* chunk = pool.Acquire();
  pool.Release(chunk);
  EXPECT_DEATH(pool.Release(chunk), "already free");
}

TEST(BufferPoolDeathTest, ReleaseToTheWrongPoolDies) {
  BufferPool pool(16, 2);
  BufferPool other(16, 2);
  Chunk* chunk = other.Acquire();
  EXPECT_DEATH(pool.Release(chunk), "another pool");
  other.Release(chunk);
}

}  // namespace
}  // namespace ferry::dataplane
