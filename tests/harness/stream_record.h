// What a test client received on one gRPC stream, in order, plus how the stream
// ended: the reading thread records, the test thread waits for the item it
// expects. Shared by TestConnector (connector commands) and RouteWatcher
// (route snapshots).
//
// Synchronizes with std::mutex rather than absl::Mutex: Debian's Abseil is not
// built for ThreadSanitizer, which then cannot see absl::Mutex and reports
// every access it guards under --config=tsan.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpcpp/support/status.h"

namespace ferry::harness {

// Thread-safe.
template <typename T>
class StreamRecord {
 public:
  // Appends an item (the reading thread).
  void Add(T item) {
    std::lock_guard<std::mutex> lock(mu_);
    items_.push_back(std::move(item));
    changed_.notify_all();
  }

  // Records the stream's final status (the reading thread, once).
  void Finish(const grpc::Status& status) {
    std::lock_guard<std::mutex> lock(mu_);
    status_ = status;
    finished_ = true;
    changed_.notify_all();
  }

  // The first item after the one the previous WaitFor returned that
  // satisfies `match` (earlier non-matching items are passed over; `match`
  // runs under the record's lock, so it must not block). UNAVAILABLE with the
  // stream's status when it ended without one; DEADLINE_EXCEEDED after
  // `timeout`. `what` names the stream in the messages; `describe_last`
  // renders the last item for a timeout message.
  absl::StatusOr<T> WaitFor(const std::function<bool(const T&)>& match, absl::Duration timeout,
                            absl::string_view what,
                            const std::function<std::string(const T&)>& describe_last = nullptr) {
    std::unique_lock<std::mutex> lock(mu_);
    size_t found = SIZE_MAX;
    auto ready = [&] {
      for (size_t i = cursor_; i < items_.size(); ++i) {
        if (match(items_[i])) {
          found = i;
          return true;
        }
      }
      return finished_;
    };
    if (!changed_.wait_for(lock, absl::ToChronoNanoseconds(timeout), ready)) {
      std::string last = "none";
      if (!items_.empty()) last = describe_last ? describe_last(items_.back()) : "?";
      return absl::DeadlineExceededError(
          absl::StrCat(what, ": nothing matching within ", absl::FormatDuration(timeout), " (",
                       items_.size(), " received, last: ", last, ")"));
    }
    if (found != SIZE_MAX) {
      cursor_ = found + 1;
      return items_[found];
    }
    cursor_ = items_.size();
    return absl::UnavailableError(absl::StrCat(what, ": the stream ended (", status_.error_code(),
                                               ": ", status_.error_message(),
                                               ") without a matching message"));
  }

  // The final status once the stream ended; DEADLINE_EXCEEDED after `timeout`.
  absl::StatusOr<grpc::Status> WaitFinished(absl::Duration timeout, absl::string_view what) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!changed_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                           [this] { return finished_; })) {
      return absl::DeadlineExceededError(
          absl::StrCat(what, ": the stream is still open after ", absl::FormatDuration(timeout)));
    }
    return status_;
  }

  std::vector<T> items() {
    std::lock_guard<std::mutex> lock(mu_);
    return items_;
  }

  bool finished() {
    std::lock_guard<std::mutex> lock(mu_);
    return finished_;
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  // Guarded by mu_:
  std::vector<T> items_;
  size_t cursor_ = 0;
  bool finished_ = false;
  grpc::Status status_;
};

}  // namespace ferry::harness
