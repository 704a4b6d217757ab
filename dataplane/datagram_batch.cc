#include "dataplane/datagram_batch.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "glog/logging.h"

namespace ferry::dataplane {
namespace {

// Points message i's iovec at buffer i and, when `peers` is set, its name at peer i.
void LinkMessages(size_t capacity, size_t datagram_size, uint8_t* buffers, iovec* iovecs,
                  sockaddr_storage* peers, mmsghdr* messages) {
  for (size_t i = 0; i < capacity; ++i) {
    iovecs[i].iov_base = buffers + i * datagram_size;
    iovecs[i].iov_len = datagram_size;
    msghdr& header = messages[i].msg_hdr;
    header.msg_iov = &iovecs[i];
    header.msg_iovlen = 1;
    header.msg_name = &peers[i];
    header.msg_namelen = sizeof(peers[i]);
  }
}

}  // namespace

RecvBatch::RecvBatch(size_t capacity, size_t datagram_size)
    : capacity_(capacity),
      datagram_size_(datagram_size),
      buffers_(new uint8_t[capacity * datagram_size]),
      iovecs_(new iovec[capacity]()),
      peers_(new sockaddr_storage[capacity]()),
      messages_(new mmsghdr[capacity]()) {
  CHECK_GE(capacity, 1u) << "a RecvBatch needs room for a datagram";
  CHECK_GE(datagram_size, 1u) << "a RecvBatch needs room for a datagram";
  LinkMessages(capacity_, datagram_size_, buffers_.get(), iovecs_.get(), peers_.get(),
               messages_.get());
}

int RecvBatch::Receive(int fd) {
  size_ = 0;
  for (size_t i = 0; i < capacity_; ++i) {
    // The kernel overwrote these for the previous batch.
    messages_[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
    messages_[i].msg_hdr.msg_flags = 0;
  }
  const int received =
      recvmmsg(fd, messages_.get(), static_cast<unsigned int>(capacity_), MSG_DONTWAIT, nullptr);
  if (received < 0) {
    const int error = errno;
    return error == EAGAIN || error == EWOULDBLOCK || error == EINTR ? 0 : -error;
  }
  size_ = static_cast<size_t>(received);
  return received;
}

absl::Span<uint8_t> RecvBatch::data(size_t i) {
  DCHECK_LT(i, size_);
  const size_t length = std::min<size_t>(messages_[i].msg_len, datagram_size_);
  return absl::MakeSpan(buffers_.get() + i * datagram_size_, length);
}

SendBatch::SendBatch(size_t capacity, size_t datagram_size)
    : capacity_(capacity),
      datagram_size_(datagram_size),
      buffers_(new uint8_t[capacity * datagram_size]),
      iovecs_(new iovec[capacity]()),
      peers_(new sockaddr_storage[capacity]()),
      messages_(new mmsghdr[capacity]()) {
  CHECK_GE(capacity, 1u) << "a SendBatch needs room for a datagram";
  CHECK_GE(datagram_size, 1u) << "a SendBatch needs room for a datagram";
  LinkMessages(capacity_, datagram_size_, buffers_.get(), iovecs_.get(), peers_.get(),
               messages_.get());
}

absl::Span<uint8_t> SendBatch::Next() {
  if (size_ == capacity_) return {};
  return absl::MakeSpan(buffers_.get() + size_ * datagram_size_, datagram_size_);
}

void SendBatch::Commit(size_t len, const sockaddr* peer, socklen_t peer_len) {
  CHECK_LT(size_, capacity_) << "SendBatch::Commit on a full batch";
  CHECK_LE(len, datagram_size_) << "SendBatch::Commit of more bytes than a datagram holds";
  CHECK_LE(peer_len, sizeof(sockaddr_storage)) << "SendBatch::Commit: address too long";
  CHECK(peer != nullptr || peer_len == 0) << "SendBatch::Commit: null address with a length";
  iovecs_[size_].iov_len = len;
  msghdr& header = messages_[size_].msg_hdr;
  if (peer == nullptr) {
    header.msg_name = nullptr;
    header.msg_namelen = 0;
  } else {
    std::memcpy(&peers_[size_], peer, peer_len);
    header.msg_name = &peers_[size_];
    header.msg_namelen = peer_len;
  }
  ++size_;
}

SendBatch::FlushResult SendBatch::Flush(int fd) {
  FlushResult result;
  size_t next = 0;
  while (next < size_) {
    const int sent =
        sendmmsg(fd, messages_.get() + next, static_cast<unsigned int>(size_ - next), MSG_DONTWAIT);
    if (sent > 0) {
      result.sent += static_cast<size_t>(sent);
      next += static_cast<size_t>(sent);
      continue;
    }
    const int error = sent < 0 ? errno : EAGAIN;  // 0 sent: nothing went; treat as a full buffer.
    if (error == EINTR) continue;
    result.last_error = error;
    if (error == EAGAIN || error == EWOULDBLOCK) break;
    // sendmmsg fails only when its first datagram does (later failures end the batch early and
    // come back as a partial count): skip that one.
    ++result.dropped;
    ++next;
  }
  result.dropped += size_ - next;
  size_ = 0;
  return result;
}

}  // namespace ferry::dataplane
