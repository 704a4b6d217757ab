#include "controlplane/local_state_store.h"

#include <utility>

#include "common/mutex_lock.h"

namespace ferry::controlplane {

LocalStateStore::LocalStateStore(StateTable initial)
    : table_(std::move(initial)), hub_(table_.revision()) {}

void LocalStateStore::Committed(const StateTable&) {}

absl::StatusOr<std::optional<std::string>> LocalStateStore::Get(absl::string_view key) {
  absl::Status valid = ValidateKey(key);
  if (!valid.ok()) return valid;
  ReaderMutexLock lock(&mu_);
  return table_.Get(key);
}

absl::StatusOr<std::vector<KeyValue>> LocalStateStore::List(absl::string_view prefix) {
  ReaderMutexLock lock(&mu_);
  return table_.List(prefix);
}

absl::Status LocalStateStore::Put(absl::string_view key, absl::string_view value) {
  absl::Status valid = ValidateKey(key);
  if (!valid.ok()) return valid;
  return Write([&](const StateTable&) {
           return std::make_optional(
               std::vector<Mutation>{Mutation::Put(std::string(key), std::string(value))});
         })
      .status();
}

absl::Status LocalStateStore::Delete(absl::string_view key) {
  absl::Status valid = ValidateKey(key);
  if (!valid.ok()) return valid;
  return Write([&](const StateTable& table) {
           return std::make_optional(table.Changes({Mutation::Delete(std::string(key))}));
         })
      .status();
}

absl::StatusOr<bool> LocalStateStore::CompareAndSwap(absl::string_view key,
                                                     std::optional<std::string> expected,
                                                     std::optional<std::string> desired) {
  absl::Status valid = ValidateKey(key);
  if (!valid.ok()) return valid;
  return Write(
      [&](const StateTable& table) { return table.CompareAndSwapChanges(key, expected, desired); });
}

absl::Status LocalStateStore::Apply(const std::vector<Mutation>& mutations) {
  absl::Status valid = ValidateMutations(mutations);
  if (!valid.ok()) return valid;
  return Write(
             [&](const StateTable& table) { return std::make_optional(table.Changes(mutations)); })
      .status();
}

WatchId LocalStateStore::Watch(absl::string_view prefix, WatchCallback callback) {
  return hub_.Watch(prefix, std::move(callback));
}

void LocalStateStore::Unwatch(WatchId id) { hub_.Unwatch(id); }

int64_t LocalStateStore::revision() const {
  ReaderMutexLock lock(&mu_);
  return table_.revision();
}

absl::Status LocalStateStore::WithWritesPaused(
    absl::FunctionRef<absl::Status(const StateTable&)> fn) {
  MutexLock write_lock(&write_mu_);
  ReaderMutexLock lock(&mu_);
  return fn(table_);
}

absl::StatusOr<bool> LocalStateStore::Write(WritePlan plan) {
  std::vector<WatchEvent> events;
  {
    MutexLock write_lock(&write_mu_);
    std::optional<std::vector<Mutation>> changes;
    int64_t revision = 0;
    {
      ReaderMutexLock lock(&mu_);
      changes = plan(table_);
      revision = table_.revision() + 1;
    }
    if (!changes.has_value()) return false;
    if (changes->empty()) return true;
    absl::Status persisted = Persist(revision, *changes);
    if (!persisted.ok()) return persisted;
    {
      MutexLock lock(&mu_);
      events = table_.Commit(*std::move(changes));
    }
    ReaderMutexLock lock(&mu_);
    Committed(table_);
  }
  hub_.Publish(std::move(events));
  return true;
}

}  // namespace ferry::controlplane
