// BufferPool: fixed-size byte chunks, all allocated when the pool is made, for the write queues
// of one data-plane worker's stream sockets.
//
// A worker owns one pool and hands its chunks to the WriteQueues of its sockets, so that queueing
// bytes on the per-frame path never allocates and the memory a worker can tie up in unsent
// bytes is bounded by chunk_size * chunk_count. One owner thread: no locks, no atomics.

#ifndef FERRY_DATAPLANE_BUFFER_POOL_H_
#define FERRY_DATAPLANE_BUFFER_POOL_H_

#include <cstddef>
#include <cstdint>
#include <memory>

namespace ferry::dataplane {

// One chunk of a BufferPool. The bytes still to be consumed are data[offset, size).
struct Chunk {
  uint8_t* data = nullptr;  // chunk_size bytes, owned by the pool
  size_t size = 0;          // bytes used (written into data), at most the pool's chunk_size
  size_t offset = 0;        // bytes already consumed, at most size
  Chunk* next = nullptr;    // intrusive link: the pool's free list, or the holder's own list
  bool in_pool = true;  // true while the chunk is on the pool's free list (double-release check)
};

class BufferPool {
 public:
  // Allocates chunk_count chunks of chunk_size bytes each, up front. Both must be positive
  // (CHECK-fails otherwise: a pool of nothing is a configuration bug).
  BufferPool(size_t chunk_size, size_t chunk_count);
  ~BufferPool();

  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // A free chunk with size = offset = 0 and next = nullptr, now owned by the caller until it
  // is given back with Release; nullptr when every chunk is out (counted in exhausted_count()).
  // Never allocates. Owner thread only.
  Chunk* Acquire();

  // Gives `chunk` back. It must have come from this pool's Acquire and not have been released
  // since: anything else is a bug in the caller and CHECK-fails. nullptr is a no-op. The chunk's
  // `next` is overwritten. Owner thread only.
  void Release(Chunk* chunk);

  // Chunks free to Acquire.
  size_t available() const { return available_; }
  size_t chunk_size() const { return chunk_size_; }
  size_t chunk_count() const { return chunk_count_; }
  // Acquire calls that found the pool empty, since construction.
  uint64_t exhausted_count() const { return exhausted_count_; }

 private:
  const size_t chunk_size_;
  const size_t chunk_count_;
  std::unique_ptr<uint8_t[]> storage_;  // chunk_count_ * chunk_size_ bytes
  std::unique_ptr<Chunk[]> chunks_;
  Chunk* free_ = nullptr;  // singly linked through Chunk::next
  size_t available_ = 0;
  uint64_t exhausted_count_ = 0;
};

}  // namespace ferry::dataplane

#endif  // FERRY_DATAPLANE_BUFFER_POOL_H_
