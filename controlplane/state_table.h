// StateTable: the in-memory part every StateStore implementation shares — the sorted key/value
// map, the store-wide revision, and the rules of what a write changes (see StateStore), kept in
// one place so the embedded store and its test double cannot drift apart.
//
// Not thread-safe: the owning store guards it with its own lock.

#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "controlplane/state_store.h"

namespace ferry::controlplane {

// Keys to values, sorted bytewise; std::less<> allows lookups by string_view.
using StateEntries = std::map<std::string, std::string, std::less<>>;

// INVALID_ARGUMENT naming the problem if `key` cannot be stored (it is empty), OK otherwise.
absl::Status ValidateKey(absl::string_view key);

// ValidateKey for every mutation, naming the index of the first bad one.
absl::Status ValidateMutations(const std::vector<Mutation>& mutations);

class StateTable {
 public:
  // An empty table at revision 0.
  StateTable() = default;
  // A table restored from a snapshot taken at `revision`.
  StateTable(int64_t revision, StateEntries entries);

  // The revision of the last committed change (0 before the first one).
  int64_t revision() const { return revision_; }
  const StateEntries& entries() const { return entries_; }

  std::optional<std::string> Get(absl::string_view key) const;

  // Entries whose key starts with `prefix`, in key order.
  std::vector<KeyValue> List(absl::string_view prefix) const;

  // The mutations of `batch` that change something, in order: every put, and each delete of a key
  // that exists at that point of the batch (present before it, or put earlier in it).
  std::vector<Mutation> Changes(const std::vector<Mutation>& batch) const;

  // The changes a CompareAndSwap makes: nullopt when the current value is not `expected` (the swap
  // fails), otherwise the changes of putting or deleting `desired` (possibly none).
  std::optional<std::vector<Mutation>> CompareAndSwapChanges(
      absl::string_view key, const std::optional<std::string>& expected,
      const std::optional<std::string>& desired) const;

  // Applies `changes` as revision() + 1 and returns one event per change, carrying that revision.
  // `changes` must be non-empty (an empty write takes no revision); deleting a missing key is a
  // no-op, which lets journal replay apply records as they were written.
  std::vector<WatchEvent> Commit(std::vector<Mutation> changes);

 private:
  int64_t revision_ = 0;
  StateEntries entries_;
};

}  // namespace ferry::controlplane
