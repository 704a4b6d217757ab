// LocalStateStore: the part of a StateStore whose state lives in this process — a StateTable
// behind a reader/writer lock, and a WatchHub — shared by EmbeddedStateStore and the
// InMemoryStateStore test double. A subclass decides how a write becomes durable by overriding
// Persist (a journal append for the embedded store, nothing for the double).

#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "controlplane/state_store.h"
#include "controlplane/state_table.h"
#include "controlplane/watch_hub.h"

namespace ferry::controlplane {

// Thread-safe. Reads take a shared lock and never wait for Persist; writes are serialized, and
// each runs: plan the changes against the table, Persist them, apply them to the table (now
// visible to reads), Committed, then deliver watch events outside every lock.
class LocalStateStore : public StateStore {
 public:
  LocalStateStore(const LocalStateStore&) = delete;
  LocalStateStore& operator=(const LocalStateStore&) = delete;

  absl::StatusOr<std::optional<std::string>> Get(absl::string_view key) final;
  absl::StatusOr<std::vector<KeyValue>> List(absl::string_view prefix) final;
  absl::Status Put(absl::string_view key, absl::string_view value) final;
  absl::Status Delete(absl::string_view key) final;
  absl::StatusOr<bool> CompareAndSwap(absl::string_view key, std::optional<std::string> expected,
                                      std::optional<std::string> desired) final;
  absl::Status Apply(const std::vector<Mutation>& mutations) final;
  WatchId Watch(absl::string_view prefix, WatchCallback callback) final;
  void Unwatch(WatchId id) final;

  // The revision of the last committed write (0 for a store never written).
  int64_t revision() const;

 protected:
  // Starts from `initial` (empty, or what recovery loaded).
  explicit LocalStateStore(StateTable initial);

  // Makes one write durable before it becomes visible. Called with writes serialized, once per
  // write that changes something, with the revision it will take and its changes (non-empty).
  // An error fails the write, which then changes nothing in memory.
  virtual absl::Status Persist(int64_t revision, const std::vector<Mutation>& changes) = 0;

  // Called with writes still serialized, right after a write became visible, with the table as
  // of that write (valid only during the call). For housekeeping such as periodic snapshots;
  // the write has succeeded whatever happens here.
  virtual void Committed(const StateTable& table);

  // Runs `fn` on the current table with every write held off until it returns, and returns what
  // `fn` returns. Must not be called from Persist or Committed.
  absl::Status WithWritesPaused(absl::FunctionRef<absl::Status(const StateTable&)> fn);

 private:
  // The changes a write makes, computed from the current table: nullopt when a compare-and-swap
  // does not match, empty when nothing changes.
  using WritePlan = absl::FunctionRef<std::optional<std::vector<Mutation>>(const StateTable&)>;

  // Returns false, changing nothing, when `plan` returns nullopt.
  absl::StatusOr<bool> Write(WritePlan plan);

  // Serializes writers; held across Persist so the disk work of a write never blocks readers,
  // who only need mu_. Lock order: write_mu_, then mu_.
  absl::Mutex write_mu_;
  mutable absl::Mutex mu_ ABSL_ACQUIRED_AFTER(write_mu_);
  StateTable table_ ABSL_GUARDED_BY(mu_);
  WatchHub hub_;
};

}  // namespace ferry::controlplane
