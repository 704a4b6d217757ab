// Backups of a Ferry installation: its config files, its PKI (certificates and keys) and the
// Intermediate's state store, in one ustar archive (cli/tar_archive.h) led by a manifest.
//
// Archive layout:
//   MANIFEST.json         always first: {"format": "ferry-backup", "format_version": 1,
//                         "created": RFC 3339 UTC, "ferry_version", "state_copy":
//                         "snapshot" | "live", "files": [{"path", "size", "mode" (octal
//                         string), "sha256" (hex)}, ...]}
//   MANIFEST.sha256       second: the manifest's SHA-256 (hex and a newline), so that damage to
//                         the manifest's own fields is caught as well as damage to the files
//   config/<relative>     every regular file under the config directory
//   pki/<relative>        every regular file under the PKI directory
//   state/snapshot        the state store's files (controlplane/embedded_state_store.h);
//   state/journal         nothing else of the state directory (not its LOCK)
//
// Private keys (*.key) are archived and restored with mode 0600 whatever their mode on disk.
//
// The state store is copied one of two ways:
//   - Intermediate stopped (the directory's lock is free): the store is opened, which verifies
//     both files under their documented format, a snapshot is taken (so the archive holds the
//     whole state in state/snapshot and an empty journal), and the files are read while the
//     store still holds the lock. state_copy is "snapshot". This is the consistent way.
//   - Intermediate running, only with live_state: the files are read as they are, the snapshot
//     before and after the journal, and again if a snapshot was written in between. The copy is
//     what the disk held at one instant, i.e. what a crash at that instant would leave, and the
//     store recovers it the same way (a half-written last record is dropped: its write had not
//     yet been acknowledged). state_copy is "live".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ferry::cli {

inline constexpr int kBackupFormatVersion = 1;
inline constexpr char kBackupManifestPath[] = "MANIFEST.json";
inline constexpr char kBackupManifestSumPath[] = "MANIFEST.sha256";

// The three directories a backup reads or a restore writes.
struct BackupDirs {
  std::string config_dir;
  std::string pki_dir;
  std::string state_dir;
};

struct BackupCreateOptions {
  BackupDirs dirs;
  std::string ferry_version;         // Recorded in the manifest.
  absl::Time created = absl::Now();  // Recorded in the manifest and as every entry's mtime.
  bool live_state = false;           // Copy the state of a running Intermediate (see above).
  bool overwrite = false;            // Replace an existing output file.
};

// One file as the manifest lists it.
struct BackupFile {
  std::string path;  // In the archive, e.g. "pki/ca.key".
  uint64_t size = 0;
  uint32_t mode = 0;
  std::string sha256_hex;  // Lowercase.
};

struct BackupSummary {
  std::vector<BackupFile> files;  // In archive order, the manifest excluded.
  bool state_live = false;        // The state was copied live.
};

// Reads the three directories and writes the archive to `out_path` atomically (a temporary file
// beside it, synced, then renamed) with mode 0600. Errors: NOT_FOUND for a missing directory;
// FAILED_PRECONDITION when the state directory is in use by a running Intermediate and
// live_state is false, when a directory holds something other than regular files, directories
// and symlinks to regular files, or when `out_path` exists and overwrite is false; the store's
// own errors (DATA_LOSS for damaged state files); the errno's code for file operations. Writes
// nothing but `out_path` and, while the Intermediate is stopped, a fresh snapshot in the state
// directory. Not safe against concurrent writers of the config and PKI directories.
absl::StatusOr<BackupSummary> CreateBackup(const BackupCreateOptions& options,
                                           const std::string& out_path);

// What a restore does to one file.
struct RestoreAction {
  enum class Kind { kCreate, kOverwrite, kRemove };
  Kind kind = Kind::kCreate;
  std::string target;        // Where on disk.
  std::string archive_path;  // Empty for kRemove.
  uint32_t mode = 0;
  std::string data;
};

// A verified archive mapped onto target directories.
struct RestorePlan {
  std::string created;        // From the manifest.
  std::string ferry_version;  // From the manifest.
  std::string state_copy;     // "snapshot" or "live".
  // One action per archived file, in archive order; then a kRemove for each state store file in
  // the target state directory that the archive does not have (a stale snapshot beside a
  // restored journal would be replayed under it).
  std::vector<RestoreAction> actions;
  // True if some action overwrites or removes an existing file.
  bool touches_existing() const;
};

// Reads and verifies the archive at `archive_path` completely, and maps it onto `targets`;
// touches nothing. Refused, with DATA_LOSS, when the archive is damaged or truncated (see
// DecodeTar), its first two entries are not the manifest and its matching checksum, the manifest
// does not parse or lists a file whose size or SHA-256 the archive does not match, a file is in the
// archive but not the manifest or the other way round, or a path is listed twice; INVALID_ARGUMENT
// when a path is absolute, holds an empty, "." or ".." component, is outside config/, pki/ and
// state/, or names a state file other than state/journal and state/snapshot; FAILED_PRECONDITION
// for an unknown format or format_version. The error names the offending path.
absl::StatusOr<RestorePlan> PlanRestore(const std::string& archive_path, const BackupDirs& targets);

// Carries out `plan`. Refuses, writing nothing, with FAILED_PRECONDITION when some action would
// overwrite or remove a file and `force` is false (the message lists them), or when the plan
// restores state and the state directory is in use by a running Intermediate (its lock is held
// for the whole restore). Each file is written to a temporary beside its target with its mode
// and synced; only when all are written are they renamed into place (missing directories are
// created with mode 0700), so a failure while writing leaves the targets as they were.
absl::Status ApplyRestore(const RestorePlan& plan, bool force);

}  // namespace ferry::cli
