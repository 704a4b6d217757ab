// StateStore: the control plane's durable key/value state (service registrations, VIP leases,
// grants), behind an interface shaped like etcd v3 so that several Intermediates can later share
// one etcd cluster: point reads, sorted prefix listing, puts/deletes, compare-and-swap, atomic
// multi-key batches, and watches by key prefix, all ordered by one store-wide revision.
//
// Keys are strings such as "/services/<tenant>/<name>"; values are opaque bytes (callers store
// serialized protos). Implementations: EmbeddedStateStore (controlplane/embedded_state_store.h,
// the default: in-process, journal + snapshot on local disk) and InMemoryStateStore
// (controlplane/testing/in_memory_state_store.h, a test double).

#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ferry::controlplane {

// What a mutation or a watch event does to its key.
enum class ChangeType {
  kPut,     // the key now holds `value`
  kDelete,  // the key no longer exists
};

struct KeyValue {
  std::string key;
  std::string value;

  friend bool operator==(const KeyValue& a, const KeyValue& b) {
    return a.key == b.key && a.value == b.value;
  }
  friend bool operator!=(const KeyValue& a, const KeyValue& b) { return !(a == b); }
  friend std::ostream& operator<<(std::ostream& os, const KeyValue& kv) {
    return os << "{" << kv.key << " = " << kv.value << "}";
  }
};

// One step of an Apply() batch. Build with Mutation::Put / Mutation::Delete.
struct Mutation {
  ChangeType type = ChangeType::kPut;
  std::string key;
  std::string value;  // empty and ignored for kDelete

  static Mutation Put(std::string key, std::string value) {
    return Mutation{ChangeType::kPut, std::move(key), std::move(value)};
  }
  static Mutation Delete(std::string key) {
    return Mutation{ChangeType::kDelete, std::move(key), std::string()};
  }

  friend bool operator==(const Mutation& a, const Mutation& b) {
    return a.type == b.type && a.key == b.key && a.value == b.value;
  }
  friend bool operator!=(const Mutation& a, const Mutation& b) { return !(a == b); }
  friend std::ostream& operator<<(std::ostream& os, const Mutation& m) {
    return m.type == ChangeType::kPut ? os << "Put(" << m.key << ", " << m.value << ")"
                                      : os << "Delete(" << m.key << ")";
  }
};

// One key changed by one committed write. Every write that changes something gets the next
// store-wide revision (1, 2, 3, ... with no gaps; it survives restarts), and all the events of
// that write carry it, in the order of the write's mutations.
struct WatchEvent {
  ChangeType type = ChangeType::kPut;
  std::string key;
  std::string value;  // the new value for kPut; empty for kDelete
  int64_t revision = 0;

  friend bool operator==(const WatchEvent& a, const WatchEvent& b) {
    return a.type == b.type && a.key == b.key && a.value == b.value && a.revision == b.revision;
  }
  friend bool operator!=(const WatchEvent& a, const WatchEvent& b) { return !(a == b); }
  friend std::ostream& operator<<(std::ostream& os, const WatchEvent& e) {
    os << "@" << e.revision << " ";
    return e.type == ChangeType::kPut ? os << "Put(" << e.key << ", " << e.value << ")"
                                      : os << "Delete(" << e.key << ")";
  }
};

// Names a registered watch. Never 0 (kInvalidWatchId) for a live watch.
using WatchId = uint64_t;
inline constexpr WatchId kInvalidWatchId = 0;

// Thread safety: every method may be called from any thread, concurrently.
//
// What counts as a change: every Put (even of the value already stored) is a change; a Delete is
// a change only if the key exists at that point. A write with no change at all (deleting missing
// keys, a failed compare-and-swap) is not journaled, takes no revision and fires no watch.
//
// Bad input: an empty key is INVALID_ARGUMENT and the whole call changes nothing.
// Implementations may refuse oversized writes with INVALID_ARGUMENT, and report their own I/O or
// network trouble with the matching code (UNAVAILABLE, RESOURCE_EXHAUSTED, DATA_LOSS...). A write
// that returns an error other than INVALID_ARGUMENT or FAILED_PRECONDITION may or may not have
// been committed (the journal write or the network round trip failed mid-way): read back to see.
class StateStore {
 public:
  using WatchCallback = std::function<void(const WatchEvent&)>;

  virtual ~StateStore() = default;

  // The value stored under `key`, or nullopt when the key does not exist.
  virtual absl::StatusOr<std::optional<std::string>> Get(absl::string_view key) = 0;

  // Every key starting with `prefix` (all keys for ""), sorted by key (bytewise), with its value.
  // The result is one consistent view: it never mixes the before and after of a write.
  virtual absl::StatusOr<std::vector<KeyValue>> List(absl::string_view prefix) = 0;

  // Sets `key` to `value`. Returns once the change is durable.
  virtual absl::Status Put(absl::string_view key, absl::string_view value) = 0;

  // Removes `key`. Deleting a key that does not exist is OK (and changes nothing).
  virtual absl::Status Delete(absl::string_view key) = 0;

  // Atomically: if the current value of `key` equals `expected` (nullopt: the key is absent), sets
  // it to `desired` (nullopt: delete it) and returns true; otherwise changes nothing and returns
  // false. This is how two callers racing for the same key (a VIP slot, a service name) never
  // both win: exactly one CompareAndSwap(key, nullopt, mine) returns true.
  virtual absl::StatusOr<bool> CompareAndSwap(absl::string_view key,
                                              std::optional<std::string> expected,
                                              std::optional<std::string> desired) = 0;

  // Applies `mutations` in order, atomically: readers, watchers and a restart see either none or
  // all of them, under one revision. Later mutations of the same key win. An empty batch is OK.
  virtual absl::Status Apply(const std::vector<Mutation>& mutations) = 0;

  // Calls `callback` (must be non-null) for every change to a key starting with `prefix` ("" for
  // all keys) committed after Watch returns. Returns the id to pass to Unwatch.
  //
  // Delivery contract:
  //   - A callback runs after the change is durable and visible to Get/List, on the thread of the
  //     write that made it, with no store lock held: it may call any method of the store.
  //   - The writer's call returns only after its events were delivered, so a caller that wrote and
  //     then checks its own watcher sees its change. Exception: a write made from inside a
  //     callback returns (durable) before its own events are delivered; they follow, in order,
  //     once the current callback returns.
  //   - Events reach each watcher in revision order, one at a time (never two callbacks of one
  //     store at once), so a watcher can apply them to a cache with no lock of its own ordering.
  //   - Callbacks should be short: the next writer's callbacks wait for them. They must not block
  //     on another thread that is itself writing to this store (that thread waits for them).
  //
  // Typical cache: Watch(prefix) first, then List(prefix), then apply each event as it arrives;
  // events are full values, so re-applying one the List already showed is harmless.
  virtual WatchId Watch(absl::string_view prefix, WatchCallback callback) = 0;

  // Stops a watch. When Unwatch returns, the callback is not running and will not run again —
  // except when called from inside a callback, where the current call finishes normally. An
  // unknown or already removed id is ignored. Do not call it while holding a lock that a callback
  // takes: it waits for a delivery in progress on another thread.
  virtual void Unwatch(WatchId id) = 0;
};

}  // namespace ferry::controlplane
