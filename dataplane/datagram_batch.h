// Preallocated datagram batches over recvmmsg and sendmmsg: a worker receives up to `capacity`
// datagrams with one system call, works on them in place (decrypt, re-seal), fills a send batch,
// and flushes it with one system call between epoll rounds.
//
// All memory (the datagram buffers, iovecs, message headers and peer addresses) is allocated by
// the constructor; Receive, Next, Commit and Flush never allocate or lock. A batch belongs to one
// thread (its worker); it is neither copyable nor movable, since the message headers point into
// the batch itself.

#ifndef FERRY_DATAPLANE_DATAGRAM_BATCH_H_
#define FERRY_DATAPLANE_DATAGRAM_BATCH_H_

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/types/span.h"

namespace ferry::dataplane {
namespace datagram_batch_internal {

// The preallocated storage both batches share: `capacity` buffers of `datagram_size` bytes, and
// for each an iovec, a peer address and an mmsghdr pointing at them.
struct DatagramSlots {
  // Both must be >= 1 (CHECK).
  DatagramSlots(size_t capacity, size_t datagram_size);
  DatagramSlots(const DatagramSlots&) = delete;
  DatagramSlots& operator=(const DatagramSlots&) = delete;

  uint8_t* buffer(size_t i) const { return buffers.get() + i * datagram_size; }

  const size_t capacity;
  const size_t datagram_size;
  const std::unique_ptr<uint8_t[]> buffers;
  const std::unique_ptr<iovec[]> iovecs;
  const std::unique_ptr<sockaddr_storage[]> peers;
  const std::unique_ptr<mmsghdr[]> messages;
};

}  // namespace datagram_batch_internal

class RecvBatch {
 public:
  // Room for `capacity` (>= 1) datagrams of up to `datagram_size` (>= 1) bytes each.
  RecvBatch(size_t capacity, size_t datagram_size);
  RecvBatch(const RecvBatch&) = delete;
  RecvBatch& operator=(const RecvBatch&) = delete;

  // Replaces the batch's contents with one recvmmsg(MSG_DONTWAIT) on `fd` into the preallocated
  // buffers. Returns the number of datagrams received (also size()): 0 when nothing is pending
  // (EAGAIN) or the call was interrupted (EINTR); -errno for any other error (e.g. -ECONNREFUSED
  // on a connected socket whose peer is gone), with size() 0.
  int Receive(int fd);

  // Datagrams in the batch since the last Receive.
  size_t size() const { return size_; }
  size_t capacity() const { return slots_.capacity; }
  size_t datagram_size() const { return slots_.datagram_size; }

  // The i-th datagram (i < size()), mutable so that it can be decrypted in place; valid until
  // the next Receive. At most datagram_size() bytes: see truncated().
  absl::Span<uint8_t> data(size_t i);
  // The i-th datagram's sender (i < size()) and the length of its address.
  const sockaddr_storage& peer(size_t i) const { return slots_.peers[i]; }
  socklen_t peer_len(size_t i) const { return slots_.messages[i].msg_hdr.msg_namelen; }
  // True when the i-th datagram (i < size()) was bigger than datagram_size() and data(i) holds
  // only its first datagram_size() bytes (MSG_TRUNC): drop it.
  bool truncated(size_t i) const { return (slots_.messages[i].msg_hdr.msg_flags & MSG_TRUNC) != 0; }

 private:
  datagram_batch_internal::DatagramSlots slots_;
  size_t size_ = 0;
};

class SendBatch {
 public:
  // Room for `capacity` (>= 1) datagrams of up to `datagram_size` (>= 1) bytes each.
  SendBatch(size_t capacity, size_t datagram_size);
  SendBatch(const SendBatch&) = delete;
  SendBatch& operator=(const SendBatch&) = delete;

  // A buffer of datagram_size() bytes for the next datagram, or an empty span when the batch is
  // full (the caller flushes first). Commit adds what was written to it; a buffer that was not
  // committed is handed out again by the following Next().
  absl::Span<uint8_t> Next();

  // Adds the datagram written to the last Next() buffer: its first `len` bytes, to `peer`
  // (`peer_len` bytes, at most sizeof(sockaddr_storage); a null `peer` with `peer_len` 0 sends on
  // a connected socket). The address is copied. Requires a preceding Next() that returned a
  // non-empty span and `len` <= datagram_size(): anything else is a bug in the caller and
  // crashes (CHECK).
  void Commit(size_t len, const sockaddr* peer, socklen_t peer_len);

  // Committed datagrams waiting for Flush.
  size_t size() const { return size_; }
  size_t capacity() const { return slots_.capacity; }
  size_t datagram_size() const { return slots_.datagram_size; }

  struct FlushResult {
    size_t sent = 0;
    size_t dropped = 0;
    // The errno of the last failed sendmmsg (EAGAIN included), or 0 when none failed: for drop
    // counters and logs.
    int last_error = 0;
  };
  // Sends all committed datagrams on `fd` with sendmmsg(MSG_DONTWAIT), looping over partial
  // sends, then empties the batch. EAGAIN (the socket's send buffer is full) stops the flush and
  // the rest count as dropped; any other error (ECONNREFUSED from an earlier datagram on a
  // connected socket, EMSGSIZE, ENETUNREACH, EPERM ...) drops the one datagram the kernel
  // refused and the flush goes on with the next. sent + dropped == the size() before the call.
  FlushResult Flush(int fd);

 private:
  datagram_batch_internal::DatagramSlots slots_;
  size_t size_ = 0;
};

}  // namespace ferry::dataplane

#endif  // FERRY_DATAPLANE_DATAGRAM_BATCH_H_
