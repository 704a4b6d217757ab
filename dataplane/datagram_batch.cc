#include "dataplane/datagram_batch.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "glog/logging.h"

namespace ferry::dataplane {
namespace datagram_batch_internal {

DatagramSlots::DatagramSlots(size_t capacity, size_t datagram_size)
    : capacity(capacity),
      datagram_size(datagram_size),
      buffers(new uint8_t[capacity * datagram_size]),
      iovecs(new iovec[capacity]()),
      peers(new sockaddr_storage[capacity]()),
      messages(new mmsghdr[capacity]()) {
  CHECK_GE(capacity, 1u) << "a datagram batch needs room for a datagram";
  CHECK_GE(datagram_size, 1u) << "a datagram batch needs room for a datagram";
  for (size_t i = 0; i < capacity; ++i) {
    iovecs[i].iov_base = buffer(i);
    iovecs[i].iov_len = datagram_size;
    msghdr& header = messages[i].msg_hdr;
    header.msg_iov = &iovecs[i];
    header.msg_iovlen = 1;
    header.msg_name = &peers[i];
    header.msg_namelen = sizeof(peers[i]);
  }
}

}  // namespace datagram_batch_internal

RecvBatch::RecvBatch(size_t capacity, size_t datagram_size) : slots_(capacity, datagram_size) {}

int RecvBatch::Receive(int fd) {
  size_ = 0;
  for (size_t i = 0; i < slots_.capacity; ++i) {
    // The kernel overwrote these for the previous batch.
    slots_.messages[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
    slots_.messages[i].msg_hdr.msg_flags = 0;
  }
  const int received = recvmmsg(fd, slots_.messages.get(),
                                static_cast<unsigned int>(slots_.capacity), MSG_DONTWAIT, nullptr);
  if (received < 0) {
    const int error = errno;
    return error == EAGAIN || error == EWOULDBLOCK || error == EINTR ? 0 : -error;
  }
  size_ = static_cast<size_t>(received);
  return received;
}

absl::Span<uint8_t> RecvBatch::data(size_t i) {
  DCHECK_LT(i, size_);
  const size_t length = std::min<size_t>(slots_.messages[i].msg_len, slots_.datagram_size);
  return absl::MakeSpan(slots_.buffer(i), length);
}

SendBatch::SendBatch(size_t capacity, size_t datagram_size) : slots_(capacity, datagram_size) {}

absl::Span<uint8_t> SendBatch::Next() {
  if (size_ == slots_.capacity) return {};
  return absl::MakeSpan(slots_.buffer(size_), slots_.datagram_size);
}

void SendBatch::Commit(size_t len, const sockaddr* peer, socklen_t peer_len) {
  CHECK_LT(size_, slots_.capacity) << "SendBatch::Commit on a full batch";
  CHECK_LE(len, slots_.datagram_size) << "SendBatch::Commit of more bytes than a datagram holds";
  CHECK_LE(peer_len, sizeof(sockaddr_storage)) << "SendBatch::Commit: address too long";
  CHECK(peer != nullptr || peer_len == 0) << "SendBatch::Commit: null address with a length";
  slots_.iovecs[size_].iov_len = len;
  msghdr& header = slots_.messages[size_].msg_hdr;
  if (peer == nullptr) {
    header.msg_name = nullptr;
    header.msg_namelen = 0;
  } else {
    std::memcpy(&slots_.peers[size_], peer, peer_len);
    header.msg_name = &slots_.peers[size_];
    header.msg_namelen = peer_len;
  }
  ++size_;
}

SendBatch::FlushResult SendBatch::Flush(int fd) {
  FlushResult result;
  size_t next = 0;
  while (next < size_) {
    const int sent = sendmmsg(fd, slots_.messages.get() + next,
                              static_cast<unsigned int>(size_ - next), MSG_DONTWAIT);
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
