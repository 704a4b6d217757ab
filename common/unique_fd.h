// UniqueFd: sole ownership of one file descriptor, closed when the owner goes away.
//
// Sockets, epoll, eventfd and timerfd descriptors in Ferry are held through this so that every
// error path closes them. It is move-only; -1 means "no descriptor".

#pragma once

#include <unistd.h>

#include <utility>

namespace ferry {

class UniqueFd {
 public:
  UniqueFd() = default;
  // Takes ownership of `fd` (-1 or any negative value: holds nothing).
  explicit UniqueFd(int fd) : fd_(fd < 0 ? -1 : fd) {}
  ~UniqueFd() { CloseIfOpen(); }

  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  // The descriptor, still owned by this object; -1 when none.
  int get() const { return fd_; }

  // Gives up ownership without closing: returns the descriptor (the caller now closes it), or -1.
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

  // Closes the held descriptor (if any) and takes `fd` instead. Resetting to the descriptor
  // already held is a bug in the caller; it is left open rather than closed under it.
  void reset(int fd = -1) {
    if (fd == fd_) return;
    CloseIfOpen();
    fd_ = fd < 0 ? -1 : fd;
  }

  // True when a descriptor is held.
  explicit operator bool() const { return fd_ >= 0; }

 private:
  // close() exactly once, even on EINTR: Linux frees the descriptor before returning EINTR, so a
  // retry could close a descriptor another thread has just been given.
  void CloseIfOpen() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  int fd_ = -1;
};

}  // namespace ferry
