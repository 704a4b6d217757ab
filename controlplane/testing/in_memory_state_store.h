// InMemoryStateStore: a StateStore test double for unit tests of classes that keep state (VIP
// allocation, the registry): the same semantics as EmbeddedStateStore (both are LocalStateStores,
// and both pass the same conformance suite) without a disk, plus a switch to make writes fail so
// callers' error paths can be tested.

#pragma once

#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "controlplane/local_state_store.h"
#include "controlplane/state_store.h"

namespace ferry::controlplane {

// Thread-safe, like every StateStore. Nothing survives the object.
class InMemoryStateStore final : public LocalStateStore {
 public:
  // An empty store at revision 0.
  InMemoryStateStore();

  // From now on every write that would change something (and passes argument checks) returns
  // `status` and changes nothing, as a store with a failing disk or a lost etcd would;
  // OkStatus() makes writes work again. Reads, failed compare-and-swaps and no-op deletes are
  // unaffected. Thread-safe.
  void SetWriteError(absl::Status status);

 private:
  absl::Status Persist(int64_t revision, const std::vector<Mutation>& changes) override;

  absl::Mutex mu_;
  absl::Status write_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::controlplane
