#include "controlplane/testing/in_memory_state_store.h"

#include <utility>

#include "controlplane/state_table.h"
#include "controlplane/tsan_visible_lock.h"

namespace ferry::controlplane {

InMemoryStateStore::InMemoryStateStore() : LocalStateStore(StateTable()) {}

void InMemoryStateStore::SetWriteError(absl::Status status) {
  TsanVisibleMutexLock lock(&mu_);
  write_error_ = std::move(status);
}

absl::Status InMemoryStateStore::Persist(int64_t, const std::vector<Mutation>&) {
  TsanVisibleMutexLock lock(&mu_);
  return write_error_;
}

}  // namespace ferry::controlplane
