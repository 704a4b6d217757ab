#include "dataplane/buffer_pool.h"

#include <glog/logging.h>

namespace ferry::dataplane {

BufferPool::BufferPool(size_t chunk_size, size_t chunk_count)
    : chunk_size_(chunk_size), chunk_count_(chunk_count) {
  CHECK_GT(chunk_size, 0u) << "BufferPool needs a positive chunk size";
  CHECK_GT(chunk_count, 0u) << "BufferPool needs at least one chunk";
  // Default-initialized (not zeroed), so the pages are only touched, and become
  // resident, as chunks are used.
  storage_.reset(new uint8_t[chunk_size * chunk_count]);
  chunks_ = std::make_unique<Chunk[]>(chunk_count);
  // Linked so that Acquire hands chunks out in address order (lower addresses first).
  for (size_t i = chunk_count; i-- > 0;) {
    Chunk& chunk = chunks_[i];
    chunk.data = storage_.get() + i * chunk_size;
    chunk.next = free_;
    free_ = &chunk;
  }
  available_ = chunk_count;
}

BufferPool::~BufferPool() {
  // Chunks still out when the pool goes away would dangle in their holders.
  LOG_IF(DFATAL, available_ != chunk_count_)
      << "BufferPool destroyed with " << (chunk_count_ - available_) << " chunks still acquired";
}

Chunk* BufferPool::Acquire() {
  Chunk* chunk = free_;
  if (chunk == nullptr) {
    ++exhausted_count_;
    return nullptr;
  }
  free_ = chunk->next;
  --available_;
  chunk->next = nullptr;
  chunk->size = 0;
  chunk->offset = 0;
  chunk->in_pool = false;
  return chunk;
}

void BufferPool::Release(Chunk* chunk) {
  if (chunk == nullptr) return;
  CHECK(chunk >= chunks_.get() && chunk < chunks_.get() + chunk_count_)
      << "BufferPool::Release of a chunk from another pool";
  CHECK(!chunk->in_pool) << "BufferPool::Release of a chunk that is already free";
  chunk->in_pool = true;
  chunk->size = 0;
  chunk->offset = 0;
  chunk->next = free_;
  free_ = chunk;
  ++available_;
}

}  // namespace ferry::dataplane
