#include "dataplane/write_queue.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cstring>

namespace ferry::dataplane {

WriteQueue::WriteQueue(BufferPool* pool, size_t limit_bytes)
    : pool_(pool), limit_bytes_(limit_bytes) {}

WriteQueue::~WriteQueue() { Clear(); }

size_t WriteQueue::TailRoom() const {
  return tail_ == nullptr ? 0 : pool_->chunk_size() - tail_->size;
}

bool WriteQueue::CanAppend(size_t n) const {
  if (n > limit_bytes_ - std::min(bytes_, limit_bytes_)) return false;
  const size_t room = TailRoom();
  if (n <= room) return true;
  const size_t chunks_needed = (n - room + pool_->chunk_size() - 1) / pool_->chunk_size();
  return chunks_needed <= pool_->available();
}

void WriteQueue::CopyIn(absl::Span<const uint8_t> data) {
  const uint8_t* from = data.data();
  size_t left = data.size();
  while (left > 0) {
    if (TailRoom() == 0) {
      Chunk* chunk = pool_->Acquire();  // CanAppend made sure there is one.
      if (tail_ == nullptr) {
        head_ = chunk;
      } else {
        tail_->next = chunk;
      }
      tail_ = chunk;
    }
    const size_t n = std::min(left, TailRoom());
    std::memcpy(tail_->data + tail_->size, from, n);
    tail_->size += n;
    from += n;
    left -= n;
  }
  bytes_ += data.size();
}

bool WriteQueue::Append(absl::Span<const uint8_t> data) { return AppendAll({data}); }

bool WriteQueue::AppendAll(std::initializer_list<absl::Span<const uint8_t>> parts) {
  size_t total = 0;
  for (absl::Span<const uint8_t> part : parts) total += part.size();
  if (!CanAppend(total)) return false;
  for (absl::Span<const uint8_t> part : parts) CopyIn(part);
  return true;
}

absl::Status WriteQueue::FlushTo(int fd) {
  while (head_ != nullptr) {
    iovec iov[kMaxIovecs];
    int count = 0;
    for (Chunk* chunk = head_; chunk != nullptr && count < kMaxIovecs; chunk = chunk->next) {
      iov[count].iov_base = chunk->data + chunk->offset;
      iov[count].iov_len = chunk->size - chunk->offset;
      ++count;
    }
    ssize_t written;
    if (!not_a_socket_) {
      msghdr msg = {};
      msg.msg_iov = iov;
      msg.msg_iovlen = count;
      written = ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (written < 0 && errno == ENOTSOCK) {
        not_a_socket_ = true;
        continue;
      }
    } else {
      written = ::writev(fd, iov, count);
    }
    if (written < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return absl::OkStatus();
      return absl::ErrnoToStatus(errno, "writing queued bytes to the socket");
    }
    if (written == 0) return absl::OkStatus();  // Nothing taken: as good as EAGAIN.
    size_t left = static_cast<size_t>(written);
    bytes_ -= left;
    while (left > 0) {
      Chunk* chunk = head_;
      const size_t in_chunk = chunk->size - chunk->offset;
      if (left < in_chunk) {
        chunk->offset += left;
        break;
      }
      left -= in_chunk;
      head_ = chunk->next;
      pool_->Release(chunk);
    }
    if (head_ == nullptr) tail_ = nullptr;
  }
  return absl::OkStatus();
}

void WriteQueue::Clear() {
  while (head_ != nullptr) {
    Chunk* chunk = head_;
    head_ = chunk->next;
    pool_->Release(chunk);
  }
  tail_ = nullptr;
  bytes_ = 0;
}

}  // namespace ferry::dataplane
