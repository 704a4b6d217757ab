// WorkerSnapshots: hands immutable snapshots (route tables, session keys) from the control
// thread to N data-plane workers, and frees old ones once no worker holds them.
//
// DESIGN.md, "Workers": the control thread builds each new immutable table and hands it to every
// worker as a pointer swap between batches. Workers must never lock or allocate for it, and a
// table must not be freed while a worker still reads it. This is a hazard-pointer protocol with
// one hazard slot per worker:
//
//  - Publish (control thread) stores the new pointer as current and moves the previous one onto
//    a retired list.
//  - Acquire (worker w, between batches) loads current, stores it into w's slot, and re-loads
//    current; if it is unchanged, the stored pointer is protected, because any Reclaim that runs
//    after a later Publish will see it in w's slot. Otherwise it retries with the newer pointer
//    (a retry needs a Publish in between, so it is wait-free unless the control thread publishes
//    in a tight loop).
//  - Reclaim (control thread) drops each retired snapshot that no slot names.
//
// All of these use sequentially consistent atomics: the protocol needs the slot store and the
// re-load of current (worker), and the store of current and the load of the slots (control
// thread), to be ordered in one total order. Each slot sits on its own cache line, so workers
// do not slow one another down.
//
// "Frees" below means this class drops its reference: snapshots are shared_ptrs, and the
// snapshot is destroyed when its last reference goes.

#ifndef FERRY_DATAPLANE_WORKER_SNAPSHOTS_H_
#define FERRY_DATAPLANE_WORKER_SNAPSHOTS_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "glog/logging.h"

namespace ferry::dataplane {

// Threads: one control thread calls Publish, Reclaim, Current and retired_count; worker `w`
// (0 <= w < workers) alone calls Acquire(w) and Release(w); version() is for any thread.
// Not copyable or movable.
template <typename T>
class WorkerSnapshots {
 public:
  // Room for `workers` workers (at least 1; CHECK-fails on 0). Nothing is current yet.
  explicit WorkerSnapshots(size_t workers);
  // Frees every snapshot it still references. Every worker must have stopped calling Acquire
  // and must no longer read what it acquired.
  ~WorkerSnapshots() = default;

  WorkerSnapshots(const WorkerSnapshots&) = delete;
  WorkerSnapshots& operator=(const WorkerSnapshots&) = delete;

  // Control thread: makes `next` current (it may be null: workers then get nullptr) and retires
  // the previous one (publishing the current snapshot again retires nothing), counts a version,
  // then Reclaim()s.
  void Publish(std::shared_ptr<const T> next);

  // Worker `worker`, between batches: returns the current snapshot (nullptr before the first
  // Publish) and records that this worker now holds it, and no longer holds the one it acquired
  // before. The pointer stays valid until this worker's next Acquire or Release. Lock-free and
  // allocation-free. `worker` out of range CHECK-fails.
  const T* Acquire(size_t worker);

  // Worker `worker`: holds nothing any more (on worker exit, or before a long idle wait).
  void Release(size_t worker);

  // Control thread: frees retired snapshots that no worker holds; returns how many it freed.
  size_t Reclaim();

  // Control thread: retired snapshots not yet freed (held by a worker at the last Reclaim).
  size_t retired_count() const { return retired_.size(); }

  // Control thread: the current snapshot (e.g. for metrics); valid until the next Publish.
  const T* Current() const { return current_owner_.get(); }

  // Any thread: Publish calls so far. A Publish has stored its snapshot as current before it
  // counts it.
  uint64_t version() const { return version_.load(std::memory_order_seq_cst); }

  size_t workers() const { return workers_; }

 private:
  // One worker's hazard pointer, alone on a cache line.
  struct alignas(64) HazardSlot {
    std::atomic<const T*> held{nullptr};
  };

  const size_t workers_;
  std::unique_ptr<HazardSlot[]> slots_;
  // Read by every worker on every Acquire; written once per Publish. Its own line, so control
  // thread bookkeeping does not share it.
  alignas(64) std::atomic<const T*> current_{nullptr};
  alignas(64) std::atomic<uint64_t> version_{0};
  // Control thread only.
  std::shared_ptr<const T> current_owner_;
  std::vector<std::shared_ptr<const T>> retired_;
};

// --- Implementation ---------------------------------------------------------------------------

template <typename T>
WorkerSnapshots<T>::WorkerSnapshots(size_t workers) : workers_(workers) {
  CHECK_GT(workers, 0u) << "WorkerSnapshots needs at least one worker";
  slots_.reset(new HazardSlot[workers]);
}

template <typename T>
void WorkerSnapshots<T>::Publish(std::shared_ptr<const T> next) {
  current_.store(next.get(), std::memory_order_seq_cst);
  std::shared_ptr<const T> previous = std::exchange(current_owner_, std::move(next));
  if (previous != nullptr && previous != current_owner_) retired_.push_back(std::move(previous));
  version_.fetch_add(1, std::memory_order_seq_cst);
  Reclaim();
}

template <typename T>
const T* WorkerSnapshots<T>::Acquire(size_t worker) {
  CHECK_LT(worker, workers_) << "WorkerSnapshots::Acquire: no such worker";
  std::atomic<const T*>& held = slots_[worker].held;
  const T* snapshot = current_.load(std::memory_order_seq_cst);
  for (;;) {
    held.store(snapshot, std::memory_order_seq_cst);
    // Still current after the slot store: any Reclaim that could free it must first retire it
    // (a later Publish), and then sees this slot.
    const T* again = current_.load(std::memory_order_seq_cst);
    if (again == snapshot) return snapshot;
    snapshot = again;
  }
}

template <typename T>
void WorkerSnapshots<T>::Release(size_t worker) {
  CHECK_LT(worker, workers_) << "WorkerSnapshots::Release: no such worker";
  slots_[worker].held.store(nullptr, std::memory_order_seq_cst);
}

template <typename T>
size_t WorkerSnapshots<T>::Reclaim() {
  size_t freed = 0;
  for (size_t i = 0; i < retired_.size();) {
    const T* candidate = retired_[i].get();
    bool held = false;
    for (size_t w = 0; w < workers_ && !held; ++w) {
      held = slots_[w].held.load(std::memory_order_seq_cst) == candidate;
    }
    if (held) {
      ++i;
      continue;
    }
    // Order does not matter: swap with the last and drop it.
    std::swap(retired_[i], retired_.back());
    retired_.pop_back();
    ++freed;
  }
  return freed;
}

}  // namespace ferry::dataplane

#endif  // FERRY_DATAPLANE_WORKER_SNAPSHOTS_H_
