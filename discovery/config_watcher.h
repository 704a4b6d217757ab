// Watches one config file for changes with inotify and tells its owner, who reloads.
//
// The watch is on the file's directory, not the file: editors and config tools save by
// writing a temporary file and renaming it over the original (vim, emacs, `kubectl cp`,
// Ansible), which replaces the inode a file watch would follow. Events for the file's name
// count: a write that closes (IN_CLOSE_WRITE), a rename onto it (IN_MOVED_TO), creation
// (IN_CREATE), deletion or a rename away (IN_DELETE, IN_MOVED_FROM). Other names in the
// directory are ignored. A lost-events overflow counts as a change. Plain IN_MODIFY does not:
// a reload between two writes of one save would see half a file.
//
// Bursts are debounced: the callback runs once `debounce` after the last event of a burst
// (an editor's save is several events), but no later than `max_delay` after the first, so a
// file rewritten without pause still gets reloaded. A deleted file is reported too: the
// owner's reload then fails with NOT_FOUND and keeps its last good config.
//
// Not covered: a path that is a symlink whose target changes elsewhere (Kubernetes ConfigMap
// volumes swap a `..data` link); the directory itself being removed or renamed ends the watch
// (logged, and reported as a change once).
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"

namespace ferry::discovery {

class ConfigWatcher {
 public:
  struct Options {
    // Quiet time after the last event before the callback runs.
    absl::Duration debounce = absl::Milliseconds(100);
    // Longest time from the first event of a burst to the callback.
    absl::Duration max_delay = absl::Seconds(1);
  };

  // Watches `path` (its directory must exist when Start() runs; the file need not). `on_change`
  // runs on the watcher's own thread, one call at a time, and must not call Stop() or destroy
  // the watcher; it should be quick (reload, swap, return), since events that arrive
  // meanwhile are only handled after it returns (they are not lost).
  ConfigWatcher(std::string path, std::function<void()> on_change);
  ConfigWatcher(std::string path, std::function<void()> on_change, Options options);

  // Stops (see Stop()).
  ~ConfigWatcher();

  ConfigWatcher(const ConfigWatcher&) = delete;
  ConfigWatcher& operator=(const ConfigWatcher&) = delete;

  // Starts watching on a new thread. NOT_FOUND when the directory does not exist,
  // INVALID_ARGUMENT when it is not a directory, RESOURCE_EXHAUSTED when the inotify limits
  // are reached, FAILED_PRECONDITION after a successful Start() or after Stop() (a watcher runs
  // at most once; a failed Start may be retried).
  absl::Status Start();

  // Stops watching and joins the thread: once it returns, `on_change` is not running and
  // will not run again. Idempotent and thread-safe; must not be called from `on_change`.
  void Stop();

  // The watched path, as given.
  const std::string& path() const { return path_; }

 private:
  enum class State { kNew, kRunning, kStopped };

  void Run(int inotify_fd, int wake_fd);

  const std::string path_;
  const std::string directory_;
  const std::string file_name_;
  const std::function<void()> on_change_;
  const Options options_;

  std::mutex mu_;  // Serializes Start and Stop.
  State state_ ABSL_GUARDED_BY(mu_) = State::kNew;
  int inotify_fd_ ABSL_GUARDED_BY(mu_) = -1;
  int wake_fd_ ABSL_GUARDED_BY(mu_) = -1;  // eventfd that tells the thread to stop.
  std::thread thread_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::discovery
