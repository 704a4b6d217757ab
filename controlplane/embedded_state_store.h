// EmbeddedStateStore: the default StateStore, for a single Intermediate. The state lives in memory
// and is persisted under one directory so that a restart keeps leases and registrations:
//
//   <dir>/journal   every committed write, appended and fdatasync'ed before the call returns
//   <dir>/snapshot  the whole state at one revision, rewritten every snapshot_every records
//                   (written aside, fsync'ed, renamed into place, directory fsync'ed), after which
//                   the journal is reset
//   <dir>/LOCK      flock'ed by the process that has the directory open (holds its pid)
//
// Open recovers by loading the snapshot and replaying the journal. A crash in the middle of an
// append leaves a torn last record; it is dropped with a warning (its write never returned), and
// the journal is cut back to the last good record. Any other damage is DATA_LOSS naming the file
// and offset. File formats: controlplane/state_file_format.h.

#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "controlplane/local_state_store.h"
#include "controlplane/state_store.h"
#include "controlplane/state_table.h"

namespace ferry::controlplane {

struct EmbeddedStateStoreOptions {
  // Write a snapshot and reset the journal once it holds this many records. Must be >= 1. Lower
  // means faster restarts and more rewriting of the whole state.
  int64_t snapshot_every = 1000;
  // Sync every journal record, snapshot and directory change to disk before a call returns. Only
  // tests and throwaway setups turn it off: a machine crash may then lose acknowledged writes
  // (a process crash still does not).
  bool fsync = true;
};

class EmbeddedStateStore final : public LocalStateStore {
 public:
  using Options = EmbeddedStateStoreOptions;

  // Opens (creating it with mode 0700 if missing, parents included) the state directory `dir` and
  // recovers its state. Errors: INVALID_ARGUMENT for an empty dir or bad options;
  // FAILED_PRECONDITION if another open store (in this or another process) holds the directory,
  // if `dir` is not a directory, or for files of an unknown format version; DATA_LOSS (file and
  // offset) for a corrupt snapshot or damage before the journal's last record; the errno's code
  // (PERMISSION_DENIED, RESOURCE_EXHAUSTED, ...) with the path for failing file operations.
  static absl::StatusOr<std::unique_ptr<EmbeddedStateStore>> Open(const std::string& dir,
                                                                  Options options = Options());

  // Closes the files and releases the directory lock. Must not run concurrently with other calls
  // (no call may be in progress, and watch callbacks must not outlive it).
  ~EmbeddedStateStore() override;

  // The StateStore methods and revision() come from LocalStateStore: reads never touch the disk
  // nor wait for a journal sync; writes are serialized, and each is durable (journal record
  // synced) before it is visible or returns.
  //
  // Write errors beyond StateStore's: if a journal append fails (disk full, I/O error) the call
  // returns that error and the record is rolled back; if the rollback or the sync itself fails,
  // the store cannot know what is on disk and refuses every later write that would change
  // something with FAILED_PRECONDITION until it is reopened (reads keep working). A failed
  // periodic snapshot is logged and retried after another snapshot_every records; the write that
  // triggered it is already durable and still succeeds.

  // Writes a snapshot of the current state and resets the journal now, rather than at the next
  // snapshot_every boundary (before a backup, or to make the next start fast). Thread-safe;
  // writes wait for it. Errors as for Open's file operations; FAILED_PRECONDITION if the store
  // stopped accepting writes.
  absl::Status Snapshot();

  const std::string& dir() const { return dir_; }

 private:
  EmbeddedStateStore(std::string dir, Options options, int lock_fd, int journal_fd,
                     uint64_t journal_bytes, int64_t journal_records, StateTable table);

  // LocalStateStore: append and sync one journal record; take a snapshot when one is due.
  absl::Status Persist(int64_t revision, const std::vector<Mutation>& changes) override;
  void Committed(const StateTable& table) override;

  absl::Status SnapshotLocked(const StateTable& table) ABSL_EXCLUSIVE_LOCKS_REQUIRED(journal_mu_);
  absl::Status WritableLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(journal_mu_);

  const std::string dir_;
  const std::string journal_path_;
  const std::string snapshot_path_;
  const Options options_;
  const int lock_fd_;
  const int journal_fd_;  // O_APPEND

  // The journal's bookkeeping. LocalStateStore already serializes Persist, Committed and
  // Snapshot; this lock states it to the thread-safety analysis and costs nothing uncontended.
  mutable absl::Mutex journal_mu_;
  uint64_t journal_bytes_ ABSL_GUARDED_BY(journal_mu_);
  int64_t journal_records_ ABSL_GUARDED_BY(journal_mu_);
  // journal_records_ at which the next automatic snapshot is due.
  int64_t next_snapshot_at_ ABSL_GUARDED_BY(journal_mu_);
  // Set when the journal's on-disk state became unknown; every later write fails with it.
  absl::Status write_failure_ ABSL_GUARDED_BY(journal_mu_);
};

}  // namespace ferry::controlplane
