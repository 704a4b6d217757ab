#include "dataplane/byte_socket.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "dataplane/stream_conn.h"
#include "glog/logging.h"

namespace ferry::dataplane {

using stream_internal::TakeSocketError;

ByteSocket::ByteSocket(EventLoop* loop, UniqueFd fd, bool connecting, Delegate* delegate,
                       BufferPool* pool, size_t max_queued_bytes, absl::Span<uint8_t> read_buffer)
    : loop_(loop),
      fd_(std::move(fd)),
      delegate_(delegate),
      queue_(pool, max_queued_bytes),
      read_buffer_(read_buffer),
      connecting_(connecting) {
  if (read_buffer_.empty()) {
    own_read_buffer_ = std::make_unique<uint8_t[]>(kDefaultReadChunk);
    read_buffer_ = absl::MakeSpan(own_read_buffer_.get(), kDefaultReadChunk);
  }
  stream_internal::PrepareStreamSocket(fd_.get());
}

ByteSocket::~ByteSocket() {
  if (registered_) loop_->Remove(fd_.get());
}

absl::Status ByteSocket::Start() {
  if (registered_ || closed_) {
    return absl::FailedPreconditionError("ByteSocket::Start: already started or closed");
  }
  interest_ = WantedEvents();
  if (absl::Status added = loop_->Add(fd_.get(), interest_, this); !added.ok()) return added;
  registered_ = true;
  return absl::OkStatus();
}

bool ByteSocket::Write(absl::Span<const uint8_t> data) {
  if (closed_ || shutdown_requested_) return false;
  const bool was_empty = queue_.empty();
  if (!queue_.Append(data)) return false;
  // A non-empty queue means the socket was full at the last try: EPOLLOUT flushes it.
  if (was_empty && !connecting_ && deferred_error_.ok()) Flush();
  UpdateInterest();
  return true;
}

void ByteSocket::ShutdownWrite() {
  if (closed_ || shutdown_requested_) return;
  shutdown_requested_ = true;
  MaybeShutdownWrite();
  UpdateInterest();
}

void ByteSocket::PauseReading() {
  if (closed_ || paused_) return;
  paused_ = true;
  UpdateInterest();
}

void ByteSocket::ResumeReading() {
  if (closed_ || !paused_) return;
  paused_ = false;
  parked_ = false;
  UpdateInterest();
}

void ByteSocket::Close() { Finish(absl::CancelledError("the TCP socket was closed")); }

void ByteSocket::Flush() {
  const size_t before = queue_.bytes();
  const absl::Status written = queue_.FlushTo(fd_.get());
  drained_ += before - queue_.bytes();
  if (!written.ok()) deferred_error_ = written;
}

void ByteSocket::MaybeShutdownWrite() {
  if (!shutdown_requested_ || shutdown_done_ || connecting_ || !queue_.empty() ||
      !deferred_error_.ok()) {
    return;
  }
  shutdown_done_ = true;
  if (shutdown(fd_.get(), SHUT_WR) != 0) {
    deferred_error_ = absl::ErrnoToStatus(errno, "TCP socket: shutdown(SHUT_WR) failed");
  }
}

void ByteSocket::OnEvents(uint32_t epoll_events) {
  if (closed_) return;
  bool writable = (epoll_events & EPOLLOUT) != 0;
  if (connecting_) {
    if ((epoll_events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) return;
    if (absl::Status connected = TakeSocketError(fd_.get(), "TCP socket: connect failed");
        !connected.ok()) {
      Finish(connected);
      return;
    }
    connecting_ = false;
    writable = true;
    delegate_->OnConnected(this);
    if (closed_) return;
  }
  if ((epoll_events & EPOLLERR) != 0) {
    if (absl::Status error = TakeSocketError(fd_.get(), "TCP socket error"); !error.ok()) {
      Finish(error);
      return;
    }
  }
  if (writable && !queue_.empty() && deferred_error_.ok()) Flush();
  MaybeShutdownWrite();
  if (!deferred_error_.ok()) {
    Finish(deferred_error_);
    return;
  }
  if (drained_ > 0) {
    const size_t drained = drained_;
    drained_ = 0;
    delegate_->OnDrained(this, drained);
    if (closed_) return;
  }

  bool budget_spent = false;
  if (!paused_ && !read_closed_ &&
      (epoll_events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) != 0) {
    const size_t before = read_count_;
    if (!ReadData()) return;
    budget_spent = read_count_ - before >= kReadBudgetPerEvent;
  }
  // A hang-up (EPOLLHUP) means both directions are shut: by us (FIN sent) and the peer, or by a
  // reset. epoll reports it whatever the registered events, so it must be dealt with here.
  if ((epoll_events & EPOLLHUP) != 0 && !budget_spent) {
    if (!shutdown_done_) {
      // We sent no FIN, so the peer reset the connection (its error already read elsewhere).
      Finish(absl::UnavailableError("TCP socket: the connection was reset"));
      return;
    }
    // Nothing left to do but read, which is paused or finished: wait out of the loop's sight.
    if (paused_ || read_closed_) parked_ = true;
  }
  UpdateInterest();
}

bool ByteSocket::ReadData() {
  const size_t limit = read_count_ + kReadBudgetPerEvent;
  while (!paused_ && read_count_ < limit) {
    const size_t room = std::min(read_buffer_.size(), limit - read_count_);
    const ssize_t n = read(fd_.get(), read_buffer_.data(), room);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      Finish(absl::ErrnoToStatus(errno, "TCP socket: read failed"));
      return false;
    }
    if (n == 0) {
      read_closed_ = true;
      delegate_->OnReadClosed(this);
      return !closed_;
    }
    read_count_ += static_cast<size_t>(n);
    delegate_->OnData(this, read_buffer_.first(static_cast<size_t>(n)));
    if (closed_) return false;
  }
  return true;
}

uint32_t ByteSocket::WantedEvents() const {
  // Parked: edge-triggered with no events, so that the standing hang-up is not reported again.
  if (parked_) return EPOLLET;
  uint32_t events = 0;
  if (!paused_ && !read_closed_) events |= EPOLLIN;
  if (connecting_ || !queue_.empty() || drained_ > 0 || !deferred_error_.ok() ||
      (shutdown_requested_ && !shutdown_done_)) {
    events |= EPOLLOUT;
  }
  return events;
}

void ByteSocket::UpdateInterest() {
  if (!registered_ || closed_) return;
  const uint32_t wanted = WantedEvents();
  if (wanted == interest_) return;
  if (absl::Status modified = loop_->Modify(fd_.get(), wanted, this); !modified.ok()) {
    // The fd is registered, so this is a bug; the next event reports it as the socket's end.
    LOG(ERROR) << "TCP socket: " << modified;
    deferred_error_ = modified;
    return;
  }
  interest_ = wanted;
}

void ByteSocket::Finish(const absl::Status& why) {
  if (closed_) return;
  closed_ = true;
  if (registered_) {
    loop_->Remove(fd_.get());
    registered_ = false;
  }
  fd_.reset();
  queue_.Clear();
  delegate_->OnClosed(this, why);
}

}  // namespace ferry::dataplane
