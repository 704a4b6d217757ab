// Scoped locks for absl::Mutex that ThreadSanitizer can see through. Ferry's
// code locks every absl::Mutex through these, never absl::MutexLock.
//
// Debian's libabsl is built without -fsanitize=thread, so absl::Mutex's own TSan annotations are
// compiled out and, under --config=tsan, every access it guards shows up as a data race. These
// drop-in replacements for absl::MutexLock / ReaderMutexLock / CondVar::Wait lock the same
// absl::Mutex (so ABSL_GUARDED_BY and the thread-safety analysis work as usual) and, in TSan builds
// only, declare the happens-before edge the lock provides. Outside TSan they are exactly the absl
// calls. Every lock and unlock of a mutex must go through them (or none), or TSan misses edges.

#pragma once

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

// --config=tsan defines FERRY_TSAN (and undefines __SANITIZE_THREAD__ so that
// system headers keep the layouts Debian's libraries were built with).
#if defined(FERRY_TSAN)
#define FERRY_MUTEX_LOCK_ANNOTATE 1
#endif

#ifdef FERRY_MUTEX_LOCK_ANNOTATE
#include <sanitizer/tsan_interface.h>
#endif

namespace ferry {
namespace mutex_lock_internal {

// After taking `mu`: everything done before earlier holders released it happened before now.
inline void Acquired(absl::Mutex* mu) {
#ifdef FERRY_MUTEX_LOCK_ANNOTATE
  __tsan_acquire(mu);
#else
  (void)mu;
#endif
}

// Before releasing `mu`: what this thread did under it happens before the next holder's Acquired.
inline void Releasing(absl::Mutex* mu) {
#ifdef FERRY_MUTEX_LOCK_ANNOTATE
  __tsan_release(mu);
#else
  (void)mu;
#endif
}

}  // namespace mutex_lock_internal

// absl::MutexLock.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(absl::Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->Lock();
    mutex_lock_internal::Acquired(mu_);
  }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() {
    mutex_lock_internal::Releasing(mu_);
    mu_->Unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  absl::Mutex* const mu_;
};

// absl::ReaderMutexLock.
class ABSL_SCOPED_LOCKABLE ReaderMutexLock {
 public:
  explicit ReaderMutexLock(absl::Mutex* mu) ABSL_SHARED_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->ReaderLock();
    mutex_lock_internal::Acquired(mu_);
  }
  ~ReaderMutexLock() ABSL_UNLOCK_FUNCTION() {
    mutex_lock_internal::Releasing(mu_);
    mu_->ReaderUnlock();
  }
  ReaderMutexLock(const ReaderMutexLock&) = delete;
  ReaderMutexLock& operator=(const ReaderMutexLock&) = delete;

 private:
  absl::Mutex* const mu_;
};

// cv->Wait(mu), for a mutex held through MutexLock: call it in a loop that re-checks
// the awaited state after each return. Wait drops the lock while it sleeps, so the edge is
// declared on both sides. (This is also why there is no absl::Mutex::Await wrapper: Await
// evaluates the condition on other threads, inside libabsl, where no annotation can reach.)
inline void CondVarWait(absl::CondVar* cv, absl::Mutex* mu) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
  mutex_lock_internal::Releasing(mu);
  cv->Wait(mu);
  mutex_lock_internal::Acquired(mu);
}

// mu->AwaitWithTimeout(condition, timeout) for a mutex held through
// MutexLock: the condition is evaluated inside libabsl, and the re-acquisition
// is declared to TSan on return. Returns whether the condition became true.
inline bool AwaitWithTimeout(absl::Mutex* mu, const absl::Condition& condition,
                             absl::Duration timeout) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
  mutex_lock_internal::Releasing(mu);
  const bool met = mu->AwaitWithTimeout(condition, timeout);
  mutex_lock_internal::Acquired(mu);
  return met;
}

}  // namespace ferry
