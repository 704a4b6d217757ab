#include "health/probe_core.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace ferry::health {

ProbeCore::ProbeCore(dataplane::EventLoop& loop, absl::Duration timeout, Done done)
    : loop_(loop), timers_(TimerQueue::ForLoop(loop)), done_(std::move(done)) {
  if (timers_ == nullptr) {
    // Without a timer the deadline cannot be kept; fail at once instead of maybe never.
    FinishSoon(false, "probe: no timer for its deadline (out of file descriptors?)");
    return;
  }
  deadline_ = timers_->Schedule(MonotonicNow() + timeout, [this] {
    deadline_ = 0;
    OnTimeout();
  });
}

ProbeCore::~ProbeCore() {
  *alive_ = false;
  CloseSocket();
  if (timers_ != nullptr) {
    timers_->Cancel(deadline_);
    timers_->Cancel(finish_soon_);
  }
}

void ProbeCore::CloseSocket() {
  if (registered_) loop_.Remove(fd_.get());
  registered_ = false;
  fd_.reset();
}

bool ProbeCore::Watch(UniqueFd fd, uint32_t events) {
  CloseSocket();
  fd_ = std::move(fd);
  if (absl::Status added = loop_.Add(fd_.get(), events, this); !added.ok()) {
    FinishSoon(false, absl::StrCat("probe: ", added.message()));
    return false;
  }
  registered_ = true;
  return true;
}

void ProbeCore::WatchEvents(uint32_t events) {
  if (registered_) (void)loop_.Modify(fd_.get(), events, this);
}

void ProbeCore::OnEvents(uint32_t epoll_events) {
  if (!finished_) OnSocketEvents(epoll_events);
}

void ProbeCore::OnTimeout() { Finish(false, "timeout"); }

void ProbeCore::Finish(bool ok, std::string detail) {
  if (finished_) return;
  finished_ = true;
  CloseSocket();
  if (timers_ != nullptr) {
    timers_->Cancel(deadline_);
    timers_->Cancel(finish_soon_);
  }
  deadline_ = finish_soon_ = 0;
  // Moved out first: `done` may destroy this object (and with it done_).
  Done done = std::move(done_);
  done(ProbeResult{ok, std::move(detail)});
}

void ProbeCore::FinishSoon(bool ok, std::string detail) {
  if (finished_ || finish_soon_ != 0) return;
  CloseSocket();
  if (timers_ != nullptr) {
    finish_soon_ = timers_->Schedule(MonotonicNow(), [this, ok, detail = std::move(detail)] {
      finish_soon_ = 0;
      Finish(ok, detail);
    });
    return;
  }
  // No timer queue: the loop's post queue, with a flag the destructor clears.
  loop_.Post([this, alive = alive_, ok, detail = std::move(detail)] {
    if (*alive) Finish(ok, detail);
  });
}

absl::StatusOr<UniqueFd> ConnectNonBlocking(const dataplane::SocketAddress& target, int type,
                                            int protocol, bool* connected) {
  *connected = false;
  UniqueFd fd(socket(target.family(), type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol));
  if (!fd) return absl::ErrnoToStatus(errno, absl::StrCat("socket: ", strerror(errno)));
  if (connect(fd.get(), target.get(), target.length) == 0) {
    *connected = true;
    return fd;
  }
  if (errno != EINPROGRESS) {
    return absl::ErrnoToStatus(errno, absl::StrCat("connect: ", strerror(errno)));
  }
  return fd;
}

std::string PendingSocketError(int fd) {
  int error = 0;
  socklen_t length = sizeof(error);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
  if (error == 0) return "";
  return absl::StrCat("connect: ", strerror(error));
}

std::string AddressHost(const dataplane::SocketAddress& target) {
  char text[INET6_ADDRSTRLEN] = {};
  if (target.family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(target.get())->sin_addr, text,
              sizeof(text));
  } else if (target.family() == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(target.get())->sin6_addr, text,
              sizeof(text));
  }
  return text;
}

}  // namespace ferry::health
