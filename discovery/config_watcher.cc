#include "discovery/config_watcher.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace ferry::discovery {
namespace {

// Events on the watched name that count as a change.
constexpr uint32_t kFileEvents =
    IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM;
// Events on the directory itself that end the watch.
constexpr uint32_t kDirectoryGone = IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED;

std::pair<std::string, std::string> SplitPath(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {".", path};
  return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

absl::Status WatchError(int error, const std::string& what) {
  const std::string message = absl::StrCat(what, ": ", std::strerror(error));
  switch (error) {
    case ENOENT:
      return absl::NotFoundError(message);
    case ENOTDIR:
      return absl::InvalidArgumentError(message);
    case EACCES:
      return absl::PermissionDeniedError(message);
    case EMFILE:
    case ENFILE:
    case ENOSPC:
    case ENOMEM:
      return absl::ResourceExhaustedError(
          absl::StrCat(message,
                       " (see /proc/sys/fs/inotify/max_user_watches and "
                       "max_user_instances)"));
    default:
      return absl::ErrnoToStatus(error, message);
  }
}

int CeilMillis(std::chrono::steady_clock::duration d) {
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(d).count();
  return static_cast<int>(std::clamp<decltype(ms)>(ms, 1, 60 * 60 * 1000));
}

}  // namespace

ConfigWatcher::ConfigWatcher(std::string path, std::function<void()> on_change)
    : ConfigWatcher(std::move(path), std::move(on_change), Options()) {}

ConfigWatcher::ConfigWatcher(std::string path, std::function<void()> on_change, Options options)
    : path_(std::move(path)),
      directory_(SplitPath(path_).first),
      file_name_(SplitPath(path_).second),
      on_change_(std::move(on_change)),
      options_(options) {
  CHECK(on_change_) << "ConfigWatcher(\"" << path_ << "\"): empty callback";
  CHECK_GE(options_.debounce, absl::ZeroDuration()) << "ConfigWatcher: negative debounce";
  CHECK_GE(options_.max_delay, options_.debounce) << "ConfigWatcher: max_delay < debounce";
}

ConfigWatcher::~ConfigWatcher() { Stop(); }

absl::Status ConfigWatcher::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != State::kNew) {
    return absl::FailedPreconditionError(
        absl::StrCat("ConfigWatcher for ", path_, " was already started"));
  }
  if (file_name_.empty() || file_name_ == "." || file_name_ == "..") {
    return absl::InvalidArgumentError(
        absl::StrCat("ConfigWatcher: \"", path_, "\" names a directory, not a file"));
  }
  const int inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd < 0) return WatchError(errno, "inotify_init1");
  if (inotify_add_watch(inotify_fd, directory_.c_str(),
                        kFileEvents | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR) < 0) {
    const int error = errno;
    close(inotify_fd);
    return WatchError(error,
                      absl::StrCat("cannot watch the directory ", directory_, " of ", path_));
  }
  const int wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd < 0) {
    const int error = errno;
    close(inotify_fd);
    return WatchError(error, "eventfd");
  }
  inotify_fd_ = inotify_fd;
  wake_fd_ = wake_fd;
  thread_ = std::thread([this, inotify_fd, wake_fd] { Run(inotify_fd, wake_fd); });
  state_ = State::kRunning;
  return absl::OkStatus();
}

void ConfigWatcher::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ == State::kRunning) {
    CHECK(std::this_thread::get_id() != thread_.get_id())
        << "ConfigWatcher::Stop() called from its own callback (" << path_ << ")";
    const uint64_t one = 1;
    // Cannot fail short of a bug: the counter of a fresh eventfd cannot overflow.
    PCHECK(write(wake_fd_, &one, sizeof(one)) == sizeof(one)) << "waking the config watcher";
    thread_.join();
    close(inotify_fd_);
    close(wake_fd_);
    inotify_fd_ = wake_fd_ = -1;
  }
  state_ = State::kStopped;
}

void ConfigWatcher::Run(int inotify_fd, int wake_fd) {
  using Clock = std::chrono::steady_clock;
  const auto debounce = absl::ToChronoNanoseconds(options_.debounce);
  const auto max_delay = absl::ToChronoNanoseconds(options_.max_delay);
  bool watching = true;  // False once the directory is gone.
  bool pending = false;  // A change waits for its debounce deadline.
  Clock::time_point first_event;
  Clock::time_point deadline;
  alignas(inotify_event) char buffer[16 * 1024];

  while (true) {
    int timeout_ms = -1;
    if (pending) {
      const Clock::time_point now = Clock::now();
      if (now >= deadline) {
        pending = false;
        on_change_();
        continue;
      }
      timeout_ms = CeilMillis(deadline - now);
    }
    pollfd fds[2] = {{wake_fd, POLLIN, 0},
                     {inotify_fd, static_cast<short>(watching ? POLLIN : 0), 0}};
    if (poll(fds, 2, timeout_ms) < 0) {
      if (errno == EINTR) continue;
      PLOG(ERROR) << "ConfigWatcher for " << path_ << ": poll failed; no longer watching";
      return;
    }
    if (fds[0].revents != 0) return;  // Stop().
    if ((fds[1].revents & POLLIN) == 0) continue;

    bool changed = false;
    while (true) {
      const ssize_t length = read(inotify_fd, buffer, sizeof(buffer));
      if (length < 0 && errno == EINTR) continue;
      if (length < 0 && errno == EAGAIN) break;
      if (length <= 0) {
        PLOG(ERROR) << "ConfigWatcher for " << path_ << ": reading inotify failed; no longer "
                    << "watching";
        watching = false;
        changed = true;
        break;
      }
      for (const char* p = buffer; p < buffer + length;) {
        const auto* event = reinterpret_cast<const inotify_event*>(p);
        p += sizeof(inotify_event) + event->len;
        if (event->mask & IN_Q_OVERFLOW) {
          LOG(WARNING) << "ConfigWatcher for " << path_ << ": inotify queue overflowed; "
                       << "treating it as a change";
          changed = true;
        } else if (event->mask & kDirectoryGone) {
          if (watching) {
            LOG(ERROR) << "ConfigWatcher for " << path_ << ": the directory " << directory_
                       << " was removed or renamed; no longer watching";
          }
          watching = false;
          changed = true;
        } else if ((event->mask & kFileEvents) && event->len > 0 && file_name_ == event->name) {
          changed = true;
        }
      }
      if (!watching) break;
    }
    if (!changed) continue;
    const Clock::time_point now = Clock::now();
    if (!pending) {
      pending = true;
      first_event = now;
    }
    deadline = std::min(now + debounce, first_event + max_delay);
  }
}

}  // namespace ferry::discovery
