#include "controlplane/watch_hub.h"

#include <deque>
#include <utility>

#include "absl/strings/match.h"
#include "common/mutex_lock.h"
#include "glog/logging.h"

namespace ferry::controlplane {

namespace {

// One Publish in progress on this thread. Frames of different hubs nest when a callback of one
// store writes to another.
struct DeliveryFrame {
  const WatchHub* hub;
  DeliveryFrame* outer;
  // Revisions written from inside this frame's callbacks, delivered after them.
  std::deque<std::vector<WatchEvent>> deferred;
};

thread_local DeliveryFrame* current_frame = nullptr;

}  // namespace

WatchHub::WatchHub(int64_t last_revision) : delivered_revision_(last_revision) {}

WatchId WatchHub::Watch(absl::string_view prefix, StateStore::WatchCallback callback) {
  CHECK(callback != nullptr) << "StateStore::Watch needs a callback";
  auto watcher = std::make_shared<const Watcher>(Watcher{std::string(prefix), std::move(callback)});
  MutexLock lock(&mu_);
  const WatchId id = next_id_++;
  watchers_.emplace(id, std::move(watcher));
  return id;
}

void WatchHub::Unwatch(WatchId id) {
  MutexLock lock(&mu_);
  watchers_.erase(id);
  // From inside a callback the current call simply finishes; elsewhere wait out a delivery that
  // may have picked this watcher up before it was erased.
  const std::thread::id self = std::this_thread::get_id();
  while (delivering_ && delivering_thread_ != self) CondVarWait(&delivery_done_, &mu_);
}

bool WatchHub::IsRegistered(WatchId id) const {
  MutexLock lock(&mu_);
  return watchers_.find(id) != watchers_.end();
}

void WatchHub::Publish(std::vector<WatchEvent> events) {
  CHECK(!events.empty()) << "a committed revision has at least one event";
  for (DeliveryFrame* frame = current_frame; frame != nullptr; frame = frame->outer) {
    if (frame->hub == this) {
      frame->deferred.push_back(std::move(events));
      return;
    }
  }
  DeliveryFrame frame{this, current_frame, {}};
  current_frame = &frame;
  DeliverInOrder(events);
  while (!frame.deferred.empty()) {
    std::vector<WatchEvent> next = std::move(frame.deferred.front());
    frame.deferred.pop_front();
    DeliverInOrder(next);
  }
  current_frame = frame.outer;
}

void WatchHub::DeliverInOrder(const std::vector<WatchEvent>& events) {
  const int64_t revision = events.front().revision;
  std::vector<std::pair<WatchId, std::shared_ptr<const Watcher>>> watchers;
  {
    MutexLock lock(&mu_);
    while (delivered_revision_ != revision - 1) CondVarWait(&delivery_done_, &mu_);
    delivering_ = true;
    delivering_thread_ = std::this_thread::get_id();
    watchers.assign(watchers_.begin(), watchers_.end());
  }
  for (const WatchEvent& event : events) {
    DCHECK_EQ(event.revision, revision);
    for (const auto& [id, watcher] : watchers) {
      // A callback may have removed a watcher (its own or another) since the copy was taken.
      if (absl::StartsWith(event.key, watcher->prefix) && IsRegistered(id)) {
        watcher->callback(event);
      }
    }
  }
  MutexLock lock(&mu_);
  delivered_revision_ = revision;
  delivering_ = false;
  delivery_done_.SignalAll();
}

}  // namespace ferry::controlplane
