#include "dataplane/stream_socket.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace ferry::dataplane {
namespace {

// The pending error of `fd` (SO_ERROR, which reading clears) as a status naming `what`; OK when
// there is none.
absl::Status TakeSocketError(int fd, absl::string_view what) {
  int error = 0;
  socklen_t length = sizeof(error);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat(what, ": getsockopt(SO_ERROR)"));
  }
  if (error != 0) return absl::ErrnoToStatus(error, what);
  return absl::OkStatus();
}

}  // namespace

StreamSocket::StreamSocket(EventLoop* loop, UniqueFd fd, bool connecting, BufferPool* pool,
                           size_t max_queued_bytes, const char* what)
    : loop_(loop),
      fd_(std::move(fd)),
      queue_(pool, max_queued_bytes),
      what_(what),
      connecting_(connecting) {
  const int flags = fcntl(fd_.get(), F_GETFL);
  if (flags >= 0 && (flags & O_NONBLOCK) == 0) fcntl(fd_.get(), F_SETFL, flags | O_NONBLOCK);
  // Bytes are written when they are ready and the write queue does the batching, so Nagle's
  // algorithm would only add latency. Fails on a non-TCP socket (a socketpair): nothing to do.
  const int one = 1;
  setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

StreamSocket::~StreamSocket() {
  if (registered_) loop_->Remove(fd_.get());
}

absl::Status StreamSocket::Start() {
  if (registered_ || closed_) {
    return absl::FailedPreconditionError(
        absl::StrCat(what_, ": Start called when already started or closed"));
  }
  interest_ = WantedEvents();
  if (absl::Status added = loop_->Add(fd_.get(), interest_, this); !added.ok()) return added;
  registered_ = true;
  return absl::OkStatus();
}

void StreamSocket::Close() {
  Finish(absl::CancelledError(absl::StrCat("the ", what_, " was closed")));
}

void StreamSocket::UpdateInterest() {
  if (!registered_ || closed_) return;
  const uint32_t wanted = WantedEvents();
  if (wanted == interest_) return;
  if (absl::Status modified = loop_->Modify(fd_.get(), wanted, this); !modified.ok()) {
    // The fd is registered, so this is a bug; the next event reports it as the socket's end.
    LOG(ERROR) << what_ << ": " << modified;
    deferred_error_ = modified;
    return;
  }
  interest_ = wanted;
}

void StreamSocket::Finish(const absl::Status& why) {
  if (closed_) return;
  closed_ = true;
  if (registered_) {
    loop_->Remove(fd_.get());
    registered_ = false;
  }
  fd_.reset();
  queue_.Clear();
  NotifyClosed(why);
}

size_t StreamSocket::Flush() {
  const size_t before = queue_.bytes();
  if (absl::Status written = queue_.FlushTo(fd_.get()); !written.ok()) deferred_error_ = written;
  return before - queue_.bytes();
}

StreamSocket::ConnectProgress StreamSocket::CompleteConnect(uint32_t epoll_events) {
  if ((epoll_events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) return ConnectProgress::kPending;
  if (absl::Status connected = TakeSocketError(fd_.get(), absl::StrCat(what_, ": connect failed"));
      !connected.ok()) {
    Finish(connected);
    return ConnectProgress::kFailed;
  }
  connecting_ = false;
  return ConnectProgress::kConnected;
}

bool StreamSocket::CheckSocketError() {
  if (absl::Status error = TakeSocketError(fd_.get(), what_); !error.ok()) {
    Finish(error);
    return false;
  }
  return true;
}

}  // namespace ferry::dataplane
