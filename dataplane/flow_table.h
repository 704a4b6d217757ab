// FlowTable: the fixed-capacity table of flows that one data-plane worker owns.
//
// A flow is one client conversation, keyed by (session_id, flow_id) (DESIGN.md, "Flows and
// return paths"). Each worker owns its own table, so there are no locks and no atomics; every
// allocation happens in the constructor, and no per-frame call allocates afterwards.
//
// Layout:
//  - a slot array of `capacity` slots (key, last-active time, live bit) and a parallel array of
//    `capacity` Values, both default-constructed up front. Slots never move, so a FlowHandle (the
//    slot number) stays valid until that flow is erased; callers keep handles, e.g. in epoll
//    data. Free slots sit on a stack.
//  - an open-addressing index of slot numbers, a power of two >= 2 x capacity buckets (load
//    factor at most 1/2), linear probing, backward-shift deletion (no tombstones, so probe
//    lengths depend only on what is live, never on history). Each bucket also holds 32 bits of
//    the key's hash, so a probe compares keys only when those bits match.
//  - a second open-addressing table, session_id -> live flow count, with the same probing and
//    deletion, for the per-session cap; an entry leaves when its count drops to 0.
//
// Complexity: Find, Insert, Erase, Touch, value, key, flows_of_session are expected O(1) (probe
// lengths are short at load <= 1/2 with a mixing hash); SweepIdle is O(budget) plus O(1) per
// eviction; ForEach is O(capacity). Memory: capacity x (32 bytes + sizeof(Value)) for slots, 8
// bytes per index bucket, 16 bytes per session bucket, 4 bytes per slot for the free stack.
//
// Hashing: the hash mixes a per-table secret seed into both fields with 64-bit finalizers, so
// sequential flow ids spread over the buckets and a peer that picks its own flow ids cannot aim
// them at one probe chain without knowing the seed.

#ifndef FERRY_DATAPLANE_FLOW_TABLE_H_
#define FERRY_DATAPLANE_FLOW_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace ferry::dataplane {

// The identity of a flow at a hop: the session it came in on and the flow id inside it.
struct FlowKey {
  uint64_t session_id = 0;
  uint32_t flow_id = 0;

  friend bool operator==(const FlowKey& a, const FlowKey& b) {
    return a.session_id == b.session_id && a.flow_id == b.flow_id;
  }
  friend bool operator!=(const FlowKey& a, const FlowKey& b) { return !(a == b); }
  // For absl hash containers (e.g. control-thread bookkeeping and tests).
  template <typename H>
  friend H AbslHashValue(H h, const FlowKey& key) {
    return H::combine(std::move(h), key.session_id, key.flow_id);
  }
};

// A flow's slot number in its FlowTable. Valid from the Insert that returned it until that flow
// is erased (by Erase, SweepIdle or inside ForEach); it carries nothing else.
using FlowHandle = uint32_t;
inline constexpr FlowHandle kNoFlow = ~0u;

enum class FlowInsertResult { kInserted, kExists, kTableFull, kSessionLimit };

struct FlowTableOptions {
  // Flows the table holds at most; 1 .. kMaxCapacity.
  size_t capacity = 65536;
  // Live flows one session may hold at most; at least 1. A session at the cap gets
  // kSessionLimit, so that one peer cannot take every slot of a worker.
  size_t max_flows_per_session = 4096;
  // Secret mixed into the hash. 0 (the default) picks a random seed at construction; tests pass
  // a fixed one to make bucket placement reproducible.
  uint64_t hash_seed = 0;

  static constexpr size_t kMaxCapacity = size_t{1} << 30;
};

// OK, or InvalidArgument naming the field to fix. The FlowTable constructor CHECK-fails on
// options this refuses, so validate options that come from configuration here first.
inline absl::Status ValidateFlowTableOptions(const FlowTableOptions& options) {
  if (options.capacity == 0 || options.capacity > FlowTableOptions::kMaxCapacity) {
    return absl::InvalidArgumentError(absl::StrCat("flow table capacity must be between 1 and ",
                                                   FlowTableOptions::kMaxCapacity, ", got ",
                                                   options.capacity));
  }
  if (options.max_flows_per_session == 0) {
    return absl::InvalidArgumentError("flow table max_flows_per_session must be at least 1, got 0");
  }
  return absl::OkStatus();
}

// The 64-bit finalizer of MurmurHash3: every input bit affects every output bit.
inline uint64_t MixBits64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

// The hash FlowTable indexes `key` by, under `seed`. A FlowTable with index_buckets() == 2^b
// puts `key` in home bucket HashFlowKey(key, seed) >> (64 - b).
inline uint64_t HashFlowKey(const FlowKey& key, uint64_t seed) {
  return MixBits64(MixBits64(key.session_id ^ seed) ^ (uint64_t{key.flow_id} + seed));
}

namespace flow_table_internal {

// Removes the entry at `hole` from a linear-probing table (size a power of two, at least one
// empty bucket) by moving later entries of the same cluster back into the hole whenever the hole
// lies between their home bucket and where they sit (Knuth 6.4, Algorithm R). Entry{} is the
// empty entry.
template <typename Entry, typename IsEmpty, typename HomeOf>
void BackwardShiftErase(std::vector<Entry>& table, size_t hole, IsEmpty is_empty, HomeOf home_of) {
  const size_t mask = table.size() - 1;
  size_t next = hole;
  for (;;) {
    next = (next + 1) & mask;
    if (is_empty(table[next])) break;
    const size_t home = home_of(table[next]);
    if (((next - home) & mask) >= ((next - hole) & mask)) {
      table[hole] = table[next];
      hole = next;
    }
  }
  table[hole] = Entry{};
}

// log2 of the smallest power of two >= n (n >= 1).
inline int Log2Ceil(size_t n) {
  int bits = 0;
  while ((size_t{1} << bits) < n) ++bits;
  return bits;
}

}  // namespace flow_table_internal

// Not thread-safe: one owner thread (the worker) makes every call. Value must be
// default-constructible and move-assignable; keep it allocation-free, since Insert and Erase
// reset it by assigning Value{}. Not copyable or movable (handles point into it).
template <typename Value>
class FlowTable {
 public:
  // Allocates everything. CHECK-fails on options ValidateFlowTableOptions refuses.
  explicit FlowTable(FlowTableOptions options);

  FlowTable(const FlowTable&) = delete;
  FlowTable& operator=(const FlowTable&) = delete;

  // The handle of the live flow `key`, or kNoFlow.
  FlowHandle Find(const FlowKey& key) const;

  // Adds `key` with its value reset to Value{} and last-active = now_ns, and returns its handle
  // with *result = kInserted. If `key` is already live: its handle and kExists, with the flow
  // left as it was (value and last-active untouched). With every slot taken: kTableFull; with
  // the session at max_flows_per_session: kSessionLimit; both return kNoFlow and change nothing.
  // `result` must not be null.
  FlowHandle Insert(const FlowKey& key, int64_t now_ns, FlowInsertResult* result);

  // The value, key, and last-active time of flow `h`. `h` must be a live handle of this table
  // (for a handle below capacity() that is not live these return a free slot's contents: the
  // reset Value, a stale key; beyond capacity() DCHECK-fails).
  Value& value(FlowHandle h) {
    DCHECK_LT(h, capacity_);
    return values_[h];
  }
  const Value& value(FlowHandle h) const {
    DCHECK_LT(h, capacity_);
    return values_[h];
  }
  const FlowKey& key(FlowHandle h) const {
    DCHECK_LT(h, capacity_);
    return slots_[h].key;
  }
  int64_t last_active_ns(FlowHandle h) const {
    DCHECK_LT(h, capacity_);
    return slots_[h].last_active_ns;
  }

  // Marks activity on live flow `h` at now_ns (what SweepIdle measures idleness from).
  void Touch(FlowHandle h, int64_t now_ns) {
    DCHECK_LT(h, capacity_);
    DCHECK(slots_[h].live) << "FlowTable::Touch of a flow that is not live";
    slots_[h].last_active_ns = now_ns;
  }

  // Removes flow `h`, resets its value to Value{} and frees its slot (the handle may come back
  // from a later Insert). Returns false, and changes nothing, when `h` is not a live handle of
  // this table (kNoFlow, out of range, or already erased), so a repeated erase can never put a
  // slot on the free stack twice.
  bool Erase(FlowHandle h);

  // Incremental idle sweep: examines the next min(budget, capacity()) slots, continuing where
  // the previous call stopped and wrapping around, and for each live flow with
  // now_ns - last_active_ns > idle_ns calls on_evict(FlowHandle, const FlowKey&, Value&) and
  // then erases it. Returns the number of flows evicted. on_evict may Erase the flow it is given
  // (the sweep then skips its own erase) and nothing else; it must not Insert, since a new flow
  // could take the evicted flow's slot.
  template <typename F>
  size_t SweepIdle(int64_t now_ns, int64_t idle_ns, size_t budget, F&& on_evict);

  // Calls fn(FlowHandle, const FlowKey&, Value&) once for every live flow, in slot order (for
  // shutdown and route changes). fn may Erase the flow it is given, and nothing else; it must
  // not Insert. O(capacity()).
  template <typename F>
  void ForEach(F&& fn);

  // Live flows.
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  size_t max_flows_per_session() const { return max_flows_per_session_; }
  // Live flows of `session_id` (0 for a session with none).
  size_t flows_of_session(uint64_t session_id) const;
  // Buckets in the flow index: a power of two >= 2 x capacity().
  size_t index_buckets() const { return index_.size(); }
  // The seed in use (the one passed in, or the random one picked for 0).
  uint64_t hash_seed() const { return seed_; }

 private:
  static constexpr uint32_t kEmptyBucket = ~0u;

  struct Slot {
    FlowKey key;
    int64_t last_active_ns = 0;
    bool live = false;
  };
  struct IndexEntry {
    uint32_t slot = kEmptyBucket;
    uint32_t hash_high = 0;  // the top 32 bits of the key's hash; the home bucket is a prefix
  };
  struct SessionEntry {
    uint64_t session_id = 0;
    uint32_t count = 0;  // 0 = empty bucket
  };

  static uint64_t PickSeed(uint64_t requested) {
    if (requested != 0) return requested;
    absl::BitGen gen;
    return absl::Uniform<uint64_t>(absl::IntervalClosed, gen, 1, ~uint64_t{0});
  }

  size_t IndexHome(uint32_t hash_high) const { return hash_high >> index_shift_; }
  uint64_t SessionHash(uint64_t session_id) const {
    return MixBits64(session_id ^ (seed_ * 0x9E3779B97F4A7C15ULL));
  }
  size_t SessionHome(uint64_t session_id) const {
    return static_cast<size_t>(SessionHash(session_id) >> session_shift_);
  }
  // The bucket holding `session_id`, or the empty bucket where it would go.
  size_t SessionBucket(uint64_t session_id) const;

  const size_t capacity_;
  const size_t max_flows_per_session_;
  const uint64_t seed_;
  int index_shift_ = 0;    // 32 - log2(index buckets): home = hash_high >> index_shift_
  int session_shift_ = 0;  // 64 - log2(session buckets)

  std::vector<Slot> slots_;
  std::unique_ptr<Value[]> values_;   // capacity_ of them; only Value() and Value{} assignment
  std::vector<uint32_t> free_slots_;  // a stack; free_count_ entries are valid
  size_t free_count_ = 0;
  std::vector<IndexEntry> index_;
  std::vector<SessionEntry> sessions_;
  size_t size_ = 0;
  size_t sweep_cursor_ = 0;  // the next slot SweepIdle examines
};

// --- Implementation ---------------------------------------------------------------------------

template <typename Value>
FlowTable<Value>::FlowTable(FlowTableOptions options)
    : capacity_(options.capacity),
      max_flows_per_session_(options.max_flows_per_session),
      seed_(PickSeed(options.hash_seed)) {
  const absl::Status valid = ValidateFlowTableOptions(options);
  CHECK(valid.ok()) << valid;
  // Both tables get a load factor of at most 1/2: the index holds at most capacity slots, and at
  // most capacity sessions can have a live flow.
  const int bits = flow_table_internal::Log2Ceil(2 * capacity_);  // 1 .. 31
  index_shift_ = 32 - bits;
  session_shift_ = 64 - bits;
  slots_.resize(capacity_);
  values_.reset(new Value[capacity_]());
  free_slots_.resize(capacity_);
  // Lowest slot on top, so a fresh table hands out 0, 1, 2, ...
  for (size_t i = 0; i < capacity_; ++i) {
    free_slots_[i] = static_cast<uint32_t>(capacity_ - 1 - i);
  }
  free_count_ = capacity_;
  index_.resize(size_t{1} << bits);
  sessions_.resize(size_t{1} << bits);
}

template <typename Value>
FlowHandle FlowTable<Value>::Find(const FlowKey& key) const {
  const uint32_t hash_high = static_cast<uint32_t>(HashFlowKey(key, seed_) >> 32);
  const size_t mask = index_.size() - 1;
  for (size_t i = IndexHome(hash_high);; i = (i + 1) & mask) {
    const IndexEntry& entry = index_[i];
    if (entry.slot == kEmptyBucket) return kNoFlow;
    if (entry.hash_high == hash_high && slots_[entry.slot].key == key) return entry.slot;
  }
}

template <typename Value>
size_t FlowTable<Value>::SessionBucket(uint64_t session_id) const {
  const size_t mask = sessions_.size() - 1;
  for (size_t i = SessionHome(session_id);; i = (i + 1) & mask) {
    const SessionEntry& entry = sessions_[i];
    if (entry.count == 0 || entry.session_id == session_id) return i;
  }
}

template <typename Value>
FlowHandle FlowTable<Value>::Insert(const FlowKey& key, int64_t now_ns, FlowInsertResult* result) {
  const uint32_t hash_high = static_cast<uint32_t>(HashFlowKey(key, seed_) >> 32);
  const size_t mask = index_.size() - 1;
  size_t bucket = IndexHome(hash_high);
  for (;; bucket = (bucket + 1) & mask) {
    const IndexEntry& entry = index_[bucket];
    if (entry.slot == kEmptyBucket) break;
    if (entry.hash_high == hash_high && slots_[entry.slot].key == key) {
      *result = FlowInsertResult::kExists;
      return entry.slot;
    }
  }
  if (free_count_ == 0) {
    *result = FlowInsertResult::kTableFull;
    return kNoFlow;
  }
  const size_t session_bucket = SessionBucket(key.session_id);
  SessionEntry& session = sessions_[session_bucket];
  if (session.count >= max_flows_per_session_) {
    *result = FlowInsertResult::kSessionLimit;
    return kNoFlow;
  }
  session.session_id = key.session_id;
  ++session.count;

  const uint32_t slot = free_slots_[--free_count_];
  Slot& s = slots_[slot];
  s.key = key;
  s.last_active_ns = now_ns;
  s.live = true;
  values_[slot] = Value{};
  index_[bucket] = IndexEntry{slot, hash_high};
  ++size_;
  *result = FlowInsertResult::kInserted;
  return slot;
}

template <typename Value>
bool FlowTable<Value>::Erase(FlowHandle h) {
  if (h >= capacity_ || !slots_[h].live) return false;
  Slot& s = slots_[h];

  const uint32_t hash_high = static_cast<uint32_t>(HashFlowKey(s.key, seed_) >> 32);
  const size_t mask = index_.size() - 1;
  size_t bucket = IndexHome(hash_high);
  while (index_[bucket].slot != h) {
    // A live slot is always in the index; reaching an empty bucket means the table is corrupt.
    CHECK_NE(index_[bucket].slot, kEmptyBucket) << "FlowTable index lost a live flow";
    bucket = (bucket + 1) & mask;
  }
  flow_table_internal::BackwardShiftErase(
      index_, bucket, [](const IndexEntry& e) { return e.slot == kEmptyBucket; },
      [this](const IndexEntry& e) { return IndexHome(e.hash_high); });

  const size_t session_bucket = SessionBucket(s.key.session_id);
  SessionEntry& session = sessions_[session_bucket];
  CHECK_GT(session.count, 0u) << "FlowTable session count lost a live flow";
  if (--session.count == 0) {
    flow_table_internal::BackwardShiftErase(
        sessions_, session_bucket, [](const SessionEntry& e) { return e.count == 0; },
        [this](const SessionEntry& e) { return SessionHome(e.session_id); });
  }

  s.live = false;
  values_[h] = Value{};
  free_slots_[free_count_++] = h;
  --size_;
  return true;
}

template <typename Value>
template <typename F>
size_t FlowTable<Value>::SweepIdle(int64_t now_ns, int64_t idle_ns, size_t budget, F&& on_evict) {
  const size_t to_examine = budget < capacity_ ? budget : capacity_;
  size_t evicted = 0;
  for (size_t n = 0; n < to_examine; ++n) {
    const FlowHandle h = static_cast<FlowHandle>(sweep_cursor_);
    sweep_cursor_ = sweep_cursor_ + 1 == capacity_ ? 0 : sweep_cursor_ + 1;
    const Slot& s = slots_[h];
    if (!s.live || now_ns - s.last_active_ns <= idle_ns) continue;
    on_evict(h, s.key, values_[h]);
    Erase(h);  // a no-op if on_evict erased it already
    ++evicted;
  }
  return evicted;
}

template <typename Value>
template <typename F>
void FlowTable<Value>::ForEach(F&& fn) {
  for (size_t i = 0; i < capacity_; ++i) {
    if (!slots_[i].live) continue;
    const FlowHandle h = static_cast<FlowHandle>(i);
    fn(h, slots_[i].key, values_[i]);
  }
}

template <typename Value>
size_t FlowTable<Value>::flows_of_session(uint64_t session_id) const {
  return sessions_[SessionBucket(session_id)].count;
}

}  // namespace ferry::dataplane

#endif  // FERRY_DATAPLANE_FLOW_TABLE_H_
