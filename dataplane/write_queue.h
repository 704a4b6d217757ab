// WriteQueue: the bytes waiting to go out on one non-blocking socket, held in BufferPool chunks.
//
// A stream socket that cannot take everything at once (the kernel's send buffer is full) keeps
// the rest here until the socket is writable again. The queue is bounded twice: by its own
// limit_bytes, which is the per-connection backpressure point, and by the worker's pool, which
// bounds all queues of a worker together. Nothing allocates after construction. Single thread:
// the owner of the pool.

#ifndef FERRY_DATAPLANE_WRITE_QUEUE_H_
#define FERRY_DATAPLANE_WRITE_QUEUE_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "dataplane/buffer_pool.h"

namespace ferry::dataplane {

class WriteQueue {
 public:
  // Most chunks one FlushTo system call hands to the kernel.
  static constexpr int kMaxIovecs = 16;

  // `pool` must outlive the queue. `limit_bytes` is the most the queue holds.
  WriteQueue(BufferPool* pool, size_t limit_bytes);
  // Returns the queue's chunks to the pool.
  ~WriteQueue();

  WriteQueue(const WriteQueue&) = delete;
  WriteQueue& operator=(const WriteQueue&) = delete;

  // Copies `data` to the end of the queue. Returns false, appending nothing, when the queue would
  // then hold more than limit_bytes or the pool has too few free chunks for it. Empty data
  // always succeeds.
  bool Append(absl::Span<const uint8_t> data);

  // Appends all of `parts`, in order, or nothing (false, for the reasons Append gives): for a
  // record made of pieces, such as a length prefix and a frame, that must not be split by a
  // refusal.
  bool AppendAll(std::initializer_list<absl::Span<const uint8_t>> parts);

  // Whether `n` more bytes would fit now (both the limit and the pool).
  bool CanAppend(size_t n) const;

  // Writes queued bytes to `fd` (a socket: sendmsg with MSG_NOSIGNAL, so a broken connection is
  // an error and not SIGPIPE; any other fd: writev), at most kMaxIovecs chunks per call, until
  // the queue is empty or the fd would block. Consumed chunks go back to the pool. Returns OK
  // in both cases (check empty()), or the errno status of the failed write (EPIPE, ECONNRESET
  // ...), leaving the unsent bytes queued. The error path allocates the status message; nothing
  // else does.
  absl::Status FlushTo(int fd);

  // Bytes queued and not yet written.
  size_t bytes() const { return bytes_; }
  bool empty() const { return bytes_ == 0; }
  size_t limit_bytes() const { return limit_bytes_; }

  // Drops everything queued and returns the chunks to the pool.
  void Clear();

 private:
  // Free bytes at the end of the last chunk.
  size_t TailRoom() const;
  // Copies `data` into the tail and new chunks; the caller has checked CanAppend.
  void CopyIn(absl::Span<const uint8_t> data);

  BufferPool* const pool_;
  const size_t limit_bytes_;
  Chunk* head_ = nullptr;
  Chunk* tail_ = nullptr;
  size_t bytes_ = 0;
  // Whether FlushTo should use writev: set once sendmsg says the fd is not a socket.
  bool not_a_socket_ = false;
};

}  // namespace ferry::dataplane

#endif  // FERRY_DATAPLANE_WRITE_QUEUE_H_
