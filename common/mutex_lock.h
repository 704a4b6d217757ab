// Scoped locks for absl::Mutex that ThreadSanitizer can see through.
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

#if defined(__SANITIZE_THREAD__)
#define FERRY_TSAN_VISIBLE_LOCK_ANNOTATE 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FERRY_TSAN_VISIBLE_LOCK_ANNOTATE 1
#endif
#endif

#ifdef FERRY_TSAN_VISIBLE_LOCK_ANNOTATE
#include <sanitizer/tsan_interface.h>
#endif

namespace ferry::controlplane {
namespace tsan_visible_lock_internal {

// After taking `mu`: everything done before earlier holders released it happened before now.
inline void Acquired(absl::Mutex* mu) {
#ifdef FERRY_TSAN_VISIBLE_LOCK_ANNOTATE
  __tsan_acquire(mu);
#else
  (void)mu;
#endif
}

// Before releasing `mu`: what this thread did under it happens before the next holder's Acquired.
inline void Releasing(absl::Mutex* mu) {
#ifdef FERRY_TSAN_VISIBLE_LOCK_ANNOTATE
  __tsan_release(mu);
#else
  (void)mu;
#endif
}

}  // namespace tsan_visible_lock_internal

// absl::MutexLock.
class ABSL_SCOPED_LOCKABLE TsanVisibleMutexLock {
 public:
  explicit TsanVisibleMutexLock(absl::Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->Lock();
    tsan_visible_lock_internal::Acquired(mu_);
  }
  ~TsanVisibleMutexLock() ABSL_UNLOCK_FUNCTION() {
    tsan_visible_lock_internal::Releasing(mu_);
    mu_->Unlock();
  }
  TsanVisibleMutexLock(const TsanVisibleMutexLock&) = delete;
  TsanVisibleMutexLock& operator=(const TsanVisibleMutexLock&) = delete;

 private:
  absl::Mutex* const mu_;
};

// absl::ReaderMutexLock.
class ABSL_SCOPED_LOCKABLE TsanVisibleReaderMutexLock {
 public:
  explicit TsanVisibleReaderMutexLock(absl::Mutex* mu) ABSL_SHARED_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->ReaderLock();
    tsan_visible_lock_internal::Acquired(mu_);
  }
  ~TsanVisibleReaderMutexLock() ABSL_UNLOCK_FUNCTION() {
    tsan_visible_lock_internal::Releasing(mu_);
    mu_->ReaderUnlock();
  }
  TsanVisibleReaderMutexLock(const TsanVisibleReaderMutexLock&) = delete;
  TsanVisibleReaderMutexLock& operator=(const TsanVisibleReaderMutexLock&) = delete;

 private:
  absl::Mutex* const mu_;
};

// cv->Wait(mu), for a mutex held through TsanVisibleMutexLock: call it in a loop that re-checks
// the awaited state after each return. Wait drops the lock while it sleeps, so the edge is
// declared on both sides. (This is also why there is no absl::Mutex::Await wrapper: Await
// evaluates the condition on other threads, inside libabsl, where no annotation can reach.)
inline void TsanVisibleWait(absl::CondVar* cv, absl::Mutex* mu) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
  tsan_visible_lock_internal::Releasing(mu);
  cv->Wait(mu);
  tsan_visible_lock_internal::Acquired(mu);
}

}  // namespace ferry::controlplane
