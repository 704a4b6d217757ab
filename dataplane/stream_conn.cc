#include "dataplane/stream_conn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/listen_address.h"
#include "dataplane/big_endian.h"

namespace ferry::dataplane {

StreamConn::StreamConn(EventLoop* loop, UniqueFd fd, bool connecting, Delegate* delegate,
                       BufferPool* pool, size_t max_queued_bytes)
    : StreamSocket(loop, std::move(fd), connecting, pool, max_queued_bytes, "stream connection"),
      delegate_(delegate),
      read_buffer_(std::make_unique<uint8_t[]>(kReadBufferSize)) {}

StreamConn::~StreamConn() = default;

bool StreamConn::Send(absl::Span<const uint8_t> frame) {
  if (closed() || frame.size() < kMinFrameSize || frame.size() > kMaxFrameSize) return false;
  uint8_t prefix[kLengthPrefixSize];
  StoreBigEndian16(prefix, static_cast<uint16_t>(frame.size()));
  const bool was_empty = queue().empty();
  if (!queue().AppendAll({absl::MakeConstSpan(prefix), frame})) {
    // With nothing queued no flush is coming to make room (the frame is over the limit, or other
    // connections hold the pool): promising OnWritable then would only spin the loop.
    if (!was_empty) {
      want_writable_ = true;
      UpdateInterest();
    }
    return false;
  }
  // A non-empty queue means the socket was full at the last try: EPOLLOUT flushes it.
  if (was_empty && !connecting() && deferred_error().ok()) Flush();
  if (over_low_water()) want_writable_ = true;
  UpdateInterest();
  return true;
}

void StreamConn::OnEvents(uint32_t epoll_events) {
  if (closed()) return;
  bool writable = (epoll_events & EPOLLOUT) != 0;
  if (connecting()) {
    const ConnectProgress progress = CompleteConnect(epoll_events);
    if (progress != ConnectProgress::kConnected) return;
    writable = true;
  }
  if (writable && !queue().empty() && deferred_error().ok()) Flush();
  if (!deferred_error().ok()) {
    Finish(deferred_error());
    return;
  }
  if (writable_due()) {
    want_writable_ = false;
    delegate_->OnWritable(this);
    if (closed()) return;
  }
  // EPOLLERR and EPOLLHUP too: the read reports the error, or the end of the stream.
  if ((epoll_events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0 && !ReadFrames()) return;
  UpdateInterest();
}

bool StreamConn::ReadFrames() {
  size_t budget = kReadBudgetPerEvent;
  while (budget > 0) {
    MakeReadRoom();
    const size_t room = std::min(kReadBufferSize - read_end_, budget);
    const ssize_t n = read(fd(), read_buffer_.get() + read_end_, room);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      Finish(absl::ErrnoToStatus(errno, "stream connection: read failed"));
      return false;
    }
    if (n == 0) {
      const size_t partial = read_end_ - read_start_;
      Finish(partial == 0 ? absl::UnavailableError("stream connection: the peer closed it")
                          : absl::DataLossError(absl::StrCat(
                                "stream connection: the peer closed it in the middle of a frame (",
                                partial, " bytes of it received)")));
      return false;
    }
    read_end_ += static_cast<size_t>(n);
    budget -= static_cast<size_t>(n);
    if (!DispatchFrames()) return false;
  }
  return true;
}

bool StreamConn::DispatchFrames() {
  uint8_t* const buffer = read_buffer_.get();
  while (read_end_ - read_start_ >= kLengthPrefixSize) {
    const size_t length = LoadBigEndian16(buffer + read_start_);
    if (length < kMinFrameSize) {
      Finish(absl::InvalidArgumentError(absl::StrCat(
          "bad frame length ", length, " on a stream connection (a frame has at least ",
          kMinFrameSize, " bytes); closing it")));
      return false;
    }
    if (read_end_ - read_start_ < kLengthPrefixSize + length) break;
    uint8_t* const frame = buffer + read_start_ + kLengthPrefixSize;
    read_start_ += kLengthPrefixSize + length;
    // The bytes stay put until the next read, which only this object does, after the call.
    delegate_->OnFrame(this, absl::MakeSpan(frame, length));
    if (closed()) return false;
  }
  if (read_start_ == read_end_) read_start_ = read_end_ = 0;
  return true;
}

void StreamConn::MakeReadRoom() {
  if (read_start_ == 0) return;
  const size_t partial = read_end_ - read_start_;
  const size_t needed = partial >= kLengthPrefixSize
                            ? kLengthPrefixSize + LoadBigEndian16(read_buffer_.get() + read_start_)
                            : kLengthPrefixSize;
  if (read_start_ + needed <= kReadBufferSize && kReadBufferSize - read_end_ >= kMinReadRoom) {
    return;
  }
  std::memmove(read_buffer_.get(), read_buffer_.get() + read_start_, partial);
  read_start_ = 0;
  read_end_ = partial;
}

uint32_t StreamConn::WantedEvents() const {
  uint32_t events = EPOLLIN;
  if (NeedsWritable() || writable_due()) events |= EPOLLOUT;
  return events;
}

void StreamConn::NotifyClosed(const absl::Status& why) { delegate_->OnClosed(this, why); }

absl::StatusOr<UniqueFd> ConnectTcp(const std::string& host_port) {
  std::string host;
  uint16_t port = 0;
  if (absl::Status parsed = ParseHostPort(host_port, PortRule::kNonZero, &host, &port);
      !parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot connect to \"", host_port, "\": ", parsed.message()));
  }
  sockaddr_storage address = {};
  socklen_t address_length = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&address);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&address);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    address_length = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    address_length = sizeof(sockaddr_in6);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot connect to \"", host_port,
        "\": the host must be an IPv4 or IPv6 address (\"10.0.0.7:7000\", \"[::1]:7000\")"));
  }
  UniqueFd fd(socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot connect to ", host_port, ": socket()"));
  }
  if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), address_length) != 0 &&
      errno != EINPROGRESS) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot connect to ", host_port));
  }
  return fd;
}

}  // namespace ferry::dataplane
