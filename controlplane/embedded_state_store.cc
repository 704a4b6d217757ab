#include "controlplane/embedded_state_store.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/mutex_lock.h"
#include "controlplane/state_file_format.h"
#include "glog/logging.h"

namespace ferry::controlplane {
namespace {

constexpr absl::string_view kJournalName = "journal";
constexpr absl::string_view kSnapshotName = "snapshot";
constexpr absl::string_view kLockName = "LOCK";
constexpr absl::string_view kTempSuffix = ".tmp";

std::string PathIn(absl::string_view dir, absl::string_view name) {
  return absl::StrCat(dir, "/", name);
}

// The status for a failed system call on `path`, with the code that best says what to fix.
absl::Status IoError(absl::string_view op, absl::string_view path, int error) {
  const std::string message = absl::StrCat(op, " ", path, ": ", std::strerror(error));
  switch (error) {
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
      return absl::ResourceExhaustedError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    case EROFS:
    case ENOTDIR:
      return absl::FailedPreconditionError(message);
    case ENOENT:
      return absl::NotFoundError(message);
    default:
      return absl::InternalError(message);
  }
}

// Owns a file descriptor.
class ScopedFd {
 public:
  explicit ScopedFd(int fd = -1) : fd_(fd) {}
  ~ScopedFd() {
    if (fd_ >= 0) close(fd_);
  }
  ScopedFd(ScopedFd&& other) noexcept : fd_(other.release()) {}
  ScopedFd& operator=(ScopedFd&&) = delete;

  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

absl::Status WriteAll(int fd, absl::string_view bytes, absl::string_view path) {
  while (!bytes.empty()) {
    const ssize_t n = write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("write", path, errno);
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status SyncFd(int fd, absl::string_view path, bool data_only) {
  if ((data_only ? fdatasync(fd) : fsync(fd)) != 0) {
    return IoError(data_only ? "fdatasync" : "fsync", path, errno);
  }
  return absl::OkStatus();
}

// Makes the directory entries of `dir` (a rename, a new file) durable.
absl::Status SyncDir(const std::string& dir) {
  ScopedFd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return IoError("open", dir, errno);
  return SyncFd(fd.get(), dir, /*data_only=*/false);
}

// The whole content of `path`, or nullopt if it does not exist.
absl::StatusOr<std::optional<std::string>> ReadFile(const std::string& path) {
  ScopedFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return std::nullopt;
    return IoError("open", path, errno);
  }
  std::string content;
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = read(fd.get(), buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("read", path, errno);
    }
    if (n == 0) break;
    content.append(buffer, static_cast<size_t>(n));
  }
  return content;
}

// Creates `path` as `bytes` atomically: written to path.tmp, synced, renamed over path, and the
// directory synced, so a crash leaves either the old file or the new one.
absl::Status ReplaceFile(const std::string& dir, const std::string& path, absl::string_view bytes,
                         bool sync) {
  const std::string temp = absl::StrCat(path, kTempSuffix);
  {
    ScopedFd fd(open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (fd.get() < 0) return IoError("open", temp, errno);
    absl::Status status = WriteAll(fd.get(), bytes, temp);
    if (status.ok() && sync) status = SyncFd(fd.get(), temp, /*data_only=*/false);
    if (!status.ok()) {
      unlink(temp.c_str());
      return status;
    }
  }
  if (rename(temp.c_str(), path.c_str()) != 0) {
    const int error = errno;
    unlink(temp.c_str());
    return IoError("rename", temp, error);
  }
  return sync ? SyncDir(dir) : absl::OkStatus();
}

// mkdir -p with mode 0700 for every directory it creates; with `sync`, each new directory's entry
// in its parent is made durable too, so a crash cannot lose the whole state directory.
absl::Status MakeDirs(const std::string& dir, bool sync) {
  struct stat st;
  if (stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("state directory ", dir, " exists and is not a directory"));
    }
    return absl::OkStatus();
  }
  if (errno != ENOENT) return IoError("stat", dir, errno);
  const size_t slash = dir.find_last_of('/');
  const std::string parent = slash == std::string::npos ? "."
                             : slash == 0               ? "/"
                                                        : dir.substr(0, slash);
  if (slash != std::string::npos && slash > 0) {
    absl::Status made = MakeDirs(parent, sync);
    if (!made.ok()) return made;
  }
  if (mkdir(dir.c_str(), 0700) != 0) {
    if (errno == EEXIST) return absl::OkStatus();  // created by someone else meanwhile
    return IoError("mkdir", dir, errno);
  }
  return sync ? SyncDir(parent) : absl::OkStatus();
}

// Takes the directory's lock file, or says who holds it.
absl::StatusOr<ScopedFd> LockDir(const std::string& dir) {
  const std::string path = PathIn(dir, kLockName);
  ScopedFd fd(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (fd.get() < 0) return IoError("open", path, errno);
  if (flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) return IoError("flock", path, errno);
    char holder[32] = {};
    const ssize_t n = pread(fd.get(), holder, sizeof(holder) - 1, 0);
    absl::string_view pid =
        absl::StripAsciiWhitespace(absl::string_view(holder, n > 0 ? static_cast<size_t>(n) : 0));
    return absl::FailedPreconditionError(
        absl::StrCat("state directory ", dir, " is in use by another state store (pid ",
                     pid.empty() ? "unknown" : pid, " holds ", path,
                     "); stop that process, or give this one its own state directory"));
  }
  const std::string pid = absl::StrCat(getpid(), "\n");
  if (ftruncate(fd.get(), 0) != 0 || pwrite(fd.get(), pid.data(), pid.size(), 0) < 0) {
    LOG(WARNING) << "could not record pid in " << path << ": " << std::strerror(errno);
  }
  return fd;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EmbeddedStateStore>> EmbeddedStateStore::Open(
    const std::string& dir_arg, Options options) {
  if (dir_arg.empty()) {
    return absl::InvalidArgumentError("state directory is empty; pass the directory to keep state");
  }
  if (options.snapshot_every < 1) {
    return absl::InvalidArgumentError(absl::StrCat("snapshot_every is ", options.snapshot_every,
                                                   "; it must be at least 1 (default 1000)"));
  }
  std::string dir = dir_arg;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();

  absl::Status status = MakeDirs(dir, options.fsync);
  if (!status.ok()) return status;
  absl::StatusOr<ScopedFd> lock = LockDir(dir);
  if (!lock.ok()) return lock.status();

  // A temp file is only ever a half-written replacement; the real file is intact.
  const std::string snapshot_path = PathIn(dir, kSnapshotName);
  const std::string journal_path = PathIn(dir, kJournalName);
  for (const std::string& path : {snapshot_path, journal_path}) {
    const std::string temp = absl::StrCat(path, kTempSuffix);
    if (unlink(temp.c_str()) != 0 && errno != ENOENT) return IoError("unlink", temp, errno);
  }

  absl::StatusOr<std::optional<std::string>> snapshot_bytes = ReadFile(snapshot_path);
  if (!snapshot_bytes.ok()) return snapshot_bytes.status();
  StateTable table;
  if (snapshot_bytes->has_value()) {
    absl::StatusOr<ParsedSnapshot> snapshot = ParseSnapshot(**snapshot_bytes, snapshot_path);
    if (!snapshot.ok()) return snapshot.status();
    table = StateTable(snapshot->revision, std::move(snapshot->entries));
  }

  absl::StatusOr<std::optional<std::string>> journal_bytes = ReadFile(journal_path);
  if (!journal_bytes.ok()) return journal_bytes.status();
  if (!journal_bytes->has_value()) {
    *journal_bytes = EncodeJournalFileHeader();
    status = ReplaceFile(dir, journal_path, **journal_bytes, options.fsync);
    if (!status.ok()) return status;
  }
  absl::StatusOr<ParsedJournal> journal = ParseJournal(**journal_bytes, journal_path);
  if (!journal.ok()) return journal.status();

  // Records up to the snapshot's revision are left over from a crash between writing a snapshot
  // and resetting the journal; the rest must continue the snapshot with no gap.
  const int64_t snapshot_revision = table.revision();
  for (JournalRecord& record : journal->records) {
    if (record.revision <= table.revision()) {
      if (record.revision <= snapshot_revision) continue;
      return absl::DataLossError(
          absl::StrCat("state journal ", journal_path, " is corrupt at offset ", record.offset,
                       ": revision ", record.revision, " follows revision ", table.revision(),
                       "; restore the state directory from a backup"));
    }
    if (record.revision != table.revision() + 1) {
      return absl::DataLossError(absl::StrCat(
          "state journal ", journal_path, " skips from revision ", table.revision(), " to ",
          record.revision, " at offset ", record.offset,
          snapshot_revision == table.revision() ? " (is the snapshot missing or stale?)" : "",
          "; restore the state directory from a backup"));
    }
    table.Commit(std::move(record.changes));
  }

  ScopedFd journal_fd(open(journal_path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
  if (journal_fd.get() < 0) return IoError("open", journal_path, errno);
  if (!journal->dropped_tail.empty()) {
    LOG(WARNING) << "state journal " << journal_path << ": " << journal->dropped_tail
                 << " (the last append, torn by a crash or damaged; a torn append was never "
                 << "acknowledged). Recovered through "
                 << "revision " << table.revision() << ".";
    if (ftruncate(journal_fd.get(), static_cast<off_t>(journal->valid_bytes)) != 0) {
      return IoError("ftruncate", journal_path, errno);
    }
    if (options.fsync) {
      status = SyncFd(journal_fd.get(), journal_path, /*data_only=*/false);
      if (!status.ok()) return status;
    }
  }

  LOG(INFO) << "state store " << dir << " opened at revision " << table.revision() << " ("
            << table.entries().size() << " keys, " << journal->records.size()
            << " journal records)";
  const int64_t records = static_cast<int64_t>(journal->records.size());
  return std::unique_ptr<EmbeddedStateStore>(
      new EmbeddedStateStore(std::move(dir), options, lock->release(), journal_fd.release(),
                             journal->valid_bytes, records, std::move(table)));
}

EmbeddedStateStore::EmbeddedStateStore(std::string dir, Options options, int lock_fd,
                                       int journal_fd, uint64_t journal_bytes,
                                       int64_t journal_records, StateTable table)
    : LocalStateStore(std::move(table)),
      dir_(std::move(dir)),
      journal_path_(PathIn(dir_, kJournalName)),
      snapshot_path_(PathIn(dir_, kSnapshotName)),
      options_(options),
      lock_fd_(lock_fd),
      journal_fd_(journal_fd),
      journal_bytes_(journal_bytes),
      journal_records_(journal_records),
      next_snapshot_at_(options.snapshot_every) {}

EmbeddedStateStore::~EmbeddedStateStore() {
  close(journal_fd_);
  close(lock_fd_);  // releases the flock
}

absl::Status EmbeddedStateStore::Snapshot() {
  return WithWritesPaused([this](const StateTable& table) {
    MutexLock lock(&journal_mu_);
    absl::Status writable = WritableLocked();
    if (!writable.ok()) return writable;
    return SnapshotLocked(table);
  });
}

absl::Status EmbeddedStateStore::WritableLocked() const {
  if (write_failure_.ok()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "state store ", dir_, " stopped accepting writes after a journal failure (",
      write_failure_.ToString(), "); fix the disk and restart, which recovers from the journal"));
}

absl::Status EmbeddedStateStore::Persist(int64_t revision, const std::vector<Mutation>& changes) {
  MutexLock lock(&journal_mu_);
  absl::Status status = WritableLocked();
  if (!status.ok()) return status;
  absl::StatusOr<std::string> record = EncodeJournalRecord(revision, changes);
  if (!record.ok()) return record.status();

  status = WriteAll(journal_fd_, *record, journal_path_);
  if (!status.ok()) {
    // Part of the record may be in the file; cut it off so the next record does not follow
    // garbage, which recovery would have to call corruption.
    if (ftruncate(journal_fd_, static_cast<off_t>(journal_bytes_)) != 0) {
      write_failure_ = IoError("ftruncate (rolling back a failed append)", journal_path_, errno);
    }
    return status;
  }
  if (options_.fsync) {
    status = SyncFd(journal_fd_, journal_path_, /*data_only=*/true);
    if (!status.ok()) {
      // After a failed sync the kernel may have dropped the dirty pages: what the file holds is
      // unknown, so no later record may be appended to it.
      write_failure_ = status;
      return status;
    }
  }
  journal_bytes_ += record->size();
  ++journal_records_;
  return absl::OkStatus();
}

void EmbeddedStateStore::Committed(const StateTable& table) {
  MutexLock lock(&journal_mu_);
  if (journal_records_ < next_snapshot_at_) return;
  absl::Status status = SnapshotLocked(table);
  if (!status.ok()) {
    next_snapshot_at_ = journal_records_ + options_.snapshot_every;
    LOG(WARNING) << "state store " << dir_ << ": snapshot failed; the journal keeps every write "
                 << "and the snapshot is retried in " << options_.snapshot_every
                 << " records: " << status;
  }
}

absl::Status EmbeddedStateStore::SnapshotLocked(const StateTable& table) {
  absl::Status status = ReplaceFile(
      dir_, snapshot_path_, EncodeSnapshot(table.revision(), table.entries()), options_.fsync);
  if (!status.ok()) return status;

  // The snapshot now holds every journal record; a crash before the reset below only leaves
  // records that recovery skips by revision.
  if (ftruncate(journal_fd_, static_cast<off_t>(kJournalFileHeaderBytes)) != 0) {
    return IoError("ftruncate", journal_path_, errno);
  }
  journal_bytes_ = kJournalFileHeaderBytes;
  journal_records_ = 0;
  next_snapshot_at_ = options_.snapshot_every;
  if (options_.fsync) {
    status = SyncFd(journal_fd_, journal_path_, /*data_only=*/false);
    if (!status.ok()) write_failure_ = status;
  }
  return status;
}

}  // namespace ferry::controlplane
