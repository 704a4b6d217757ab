// WatchHub: the watch half of a StateStore. It keeps the registered prefix watches and delivers
// each committed revision's events to the matching callbacks, on the writer's thread, with no
// store lock held, strictly in revision order, one delivery at a time; see StateStore::Watch for
// the contract callers rely on. Shared by every StateStore implementation.

#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "controlplane/state_store.h"

namespace ferry::controlplane {

class WatchHub {
 public:
  // `last_revision`: the store's revision when the hub starts; the first Publish is expected for
  // last_revision + 1.
  explicit WatchHub(int64_t last_revision);

  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;

  // StateStore::Watch and StateStore::Unwatch. Thread-safe. A null callback is a caller bug
  // (CHECK).
  WatchId Watch(absl::string_view prefix, StateStore::WatchCallback callback);
  void Unwatch(WatchId id);

  // Delivers the events of one committed revision (non-empty, all with the same revision). The
  // store calls it exactly once for every revision it commits, from the committing thread, after
  // releasing its own locks: a revision that is never published stalls every later one.
  //
  // Blocks until every earlier revision was delivered, then calls the callbacks. If the calling
  // thread is itself inside a callback of this hub (a watcher that writes), the events are queued
  // and delivered, in order, once that callback returns, and Publish returns at once.
  void Publish(std::vector<WatchEvent> events);

 private:
  struct Watcher {
    std::string prefix;
    StateStore::WatchCallback callback;
  };

  // Waits for the turn of `events`' revision, then calls the callbacks.
  void DeliverInOrder(const std::vector<WatchEvent>& events);
  bool IsRegistered(WatchId id) const;

  mutable absl::Mutex mu_;
  WatchId next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<WatchId, std::shared_ptr<const Watcher>> watchers_ ABSL_GUARDED_BY(mu_);
  // Every revision up to this one has been delivered.
  int64_t delivered_revision_ ABSL_GUARDED_BY(mu_);
  // The thread calling callbacks right now, if any.
  bool delivering_ ABSL_GUARDED_BY(mu_) = false;
  std::thread::id delivering_thread_ ABSL_GUARDED_BY(mu_);
  // Signalled whenever a delivery ends (delivered_revision_ and delivering_ change).
  absl::CondVar delivery_done_;
};

}  // namespace ferry::controlplane
