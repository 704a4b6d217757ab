#include "controlplane/testing/in_memory_state_store.h"

#include <utility>

#include "common/mutex_lock.h"
#include "controlplane/state_table.h"

namespace ferry::controlplane {

InMemoryStateStore::InMemoryStateStore() : LocalStateStore(StateTable()) {}

void InMemoryStateStore::SetWriteError(absl::Status status) {
  MutexLock lock(&mu_);
  write_error_ = std::move(status);
}

absl::Status InMemoryStateStore::Persist(int64_t, const std::vector<Mutation>&) {
  MutexLock lock(&mu_);
  return write_error_;
}

}  // namespace ferry::controlplane
