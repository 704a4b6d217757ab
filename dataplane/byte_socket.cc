#include "dataplane/byte_socket.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

namespace ferry::dataplane {

ByteSocket::ByteSocket(EventLoop* loop, UniqueFd fd, bool connecting, Delegate* delegate,
                       BufferPool* pool, size_t max_queued_bytes, absl::Span<uint8_t> read_buffer)
    : StreamSocket(loop, std::move(fd), connecting, pool, max_queued_bytes, "TCP socket"),
      delegate_(delegate),
      read_buffer_(read_buffer) {
  if (read_buffer_.empty()) {
    own_read_buffer_ = std::make_unique<uint8_t[]>(kDefaultReadChunk);
    read_buffer_ = absl::MakeSpan(own_read_buffer_.get(), kDefaultReadChunk);
  }
}

ByteSocket::~ByteSocket() = default;

bool ByteSocket::Write(absl::Span<const uint8_t> data) {
  if (closed() || shutdown_requested_) return false;
  const bool was_empty = queue().empty();
  if (!queue().Append(data)) return false;
  // A non-empty queue means the socket was full at the last try: EPOLLOUT flushes it.
  if (was_empty && !connecting() && deferred_error().ok()) FlushAndCount();
  UpdateInterest();
  return true;
}

void ByteSocket::ShutdownWrite() {
  if (closed() || shutdown_requested_) return;
  shutdown_requested_ = true;
  MaybeShutdownWrite();
  UpdateInterest();
}

void ByteSocket::PauseReading() {
  if (closed() || paused_) return;
  paused_ = true;
  UpdateInterest();
}

void ByteSocket::ResumeReading() {
  if (closed() || !paused_) return;
  paused_ = false;
  parked_ = false;
  UpdateInterest();
}

void ByteSocket::FlushAndCount() { drained_ += Flush(); }

void ByteSocket::MaybeShutdownWrite() {
  if (!shutdown_requested_ || shutdown_done_ || connecting() || !queue().empty() ||
      !deferred_error().ok()) {
    return;
  }
  shutdown_done_ = true;
  if (shutdown(fd(), SHUT_WR) != 0) {
    DeferError(absl::ErrnoToStatus(errno, "TCP socket: shutdown(SHUT_WR) failed"));
  }
}

void ByteSocket::OnEvents(uint32_t epoll_events) {
  if (closed()) return;
  bool writable = (epoll_events & EPOLLOUT) != 0;
  if (connecting()) {
    if (CompleteConnect(epoll_events) != ConnectProgress::kConnected) return;
    writable = true;
    delegate_->OnConnected(this);
    if (closed()) return;
  }
  if ((epoll_events & EPOLLERR) != 0 && !CheckSocketError()) return;
  if (writable && !queue().empty() && deferred_error().ok()) FlushAndCount();
  MaybeShutdownWrite();
  if (!deferred_error().ok()) {
    Finish(deferred_error());
    return;
  }
  if (drained_ > 0) {
    const size_t drained = drained_;
    drained_ = 0;
    delegate_->OnDrained(this, drained);
    if (closed()) return;
  }

  bool budget_spent = false;
  if (!paused_ && !read_closed_ && (epoll_events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0) {
    const size_t before = read_count_;
    if (!ReadData()) return;
    budget_spent = read_count_ - before >= kReadBudgetPerEvent;
  }
  // A hang-up (EPOLLHUP) means both directions are shut: by us (FIN sent) and the peer, or by a
  // reset. epoll reports it whatever the registered events, so it must be dealt with here.
  if ((epoll_events & EPOLLHUP) != 0 && !budget_spent) {
    if (!shutdown_done_) {
      // We sent no FIN, so the peer reset the connection (its error was taken by an earlier call).
      Finish(absl::UnavailableError("TCP socket: the connection was reset"));
      return;
    }
    // Nothing left to do but read, which is paused or finished: out of epoll's sight until
    // ResumeReading.
    if (paused_ || read_closed_) parked_ = true;
  }
  UpdateInterest();
}

bool ByteSocket::ReadData() {
  const size_t limit = read_count_ + kReadBudgetPerEvent;
  while (!paused_ && read_count_ < limit) {
    const size_t room = std::min(read_buffer_.size(), limit - read_count_);
    const ssize_t n = read(fd(), read_buffer_.data(), room);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      Finish(absl::ErrnoToStatus(errno, "TCP socket: read failed"));
      return false;
    }
    if (n == 0) {
      read_closed_ = true;
      delegate_->OnReadClosed(this);
      return !closed();
    }
    read_count_ += static_cast<size_t>(n);
    delegate_->OnData(this, read_buffer_.first(static_cast<size_t>(n)));
    if (closed()) return false;
  }
  return true;
}

uint32_t ByteSocket::WantedEvents() const {
  // Parked: edge-triggered with no events, so that the standing hang-up is not reported again.
  if (parked_) return EPOLLET;
  uint32_t events = 0;
  if (!paused_ && !read_closed_) events |= EPOLLIN;
  if (NeedsWritable() || drained_ > 0 || (shutdown_requested_ && !shutdown_done_)) {
    events |= EPOLLOUT;
  }
  return events;
}

void ByteSocket::NotifyClosed(const absl::Status& why) { delegate_->OnClosed(this, why); }

}  // namespace ferry::dataplane
