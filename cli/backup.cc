#include "cli/backup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli/tar_archive.h"
#include "common/unique_fd.h"
#include "controlplane/embedded_state_store.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace ferry::cli {
namespace {

constexpr char kFormatName[] = "ferry-backup";
constexpr char kConfigTop[] = "config";
constexpr char kPkiTop[] = "pki";
constexpr char kStateTop[] = "state";
// The state store's files (controlplane/embedded_state_store.h); its LOCK is not state.
constexpr const char* kStateFiles[] = {"snapshot", "journal"};
constexpr char kStateLockFile[] = "LOCK";
constexpr int kLiveCopyAttempts = 10;

absl::Status IoError(absl::string_view op, absl::string_view path, int error) {
  std::string message = absl::StrCat(op, " ", path, ": ", std::strerror(error));
  switch (error) {
    case ENOENT:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(message);
    case EEXIST:
      return absl::AlreadyExistsError(message);
    case ENOTDIR:
    case EROFS:
      return absl::FailedPreconditionError(message);
    default:
      return absl::InternalError(message);
  }
}

// The whole file, or nullopt if it does not exist.
absl::StatusOr<std::optional<std::string>> ReadFileIfExists(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    return IoError("open", path, errno);
  }
  std::string data;
  char buffer[1 << 16];
  while (true) {
    ssize_t n = read(fd.get(), buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("read", path, errno);
    }
    if (n == 0) break;
    data.append(buffer, static_cast<size_t>(n));
  }
  return std::optional<std::string>(std::move(data));
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  absl::StatusOr<std::optional<std::string>> data = ReadFileIfExists(path);
  if (!data.ok()) return data.status();
  if (!data->has_value()) return IoError("open", path, ENOENT);
  return **std::move(data);
}

absl::Status WriteAll(int fd, absl::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    ssize_t n = write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("write", path, errno);
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

absl::Status SyncDir(const std::string& dir) {
  UniqueFd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return IoError("open", dir, errno);
  if (fsync(fd.get()) != 0) return IoError("fsync", dir, errno);
  return absl::OkStatus();
}

// Writes `data` to a new file `temp` with exactly `mode` (not masked by the umask), synced.
absl::Status WriteTempFile(const std::string& temp, absl::string_view data, uint32_t mode) {
  UniqueFd fd(open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (fd.get() < 0) return IoError("create", temp, errno);
  if (fchmod(fd.get(), mode) != 0) return IoError("chmod", temp, errno);
  if (absl::Status status = WriteAll(fd.get(), data, temp); !status.ok()) return status;
  if (fsync(fd.get()) != 0) return IoError("fsync", temp, errno);
  return absl::OkStatus();
}

std::string TempPathFor(const std::string& target) {
  return absl::StrCat(target, ".ferry-tmp.", getpid());
}

// Creates `dir` and its missing parents with mode 0700.
absl::Status MakeDirs(const std::string& dir) {
  struct stat st;
  if (stat(dir.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat(dir, " exists and is not a directory"));
  }
  std::string parent = DirName(dir);
  if (parent != dir) {
    if (absl::Status status = MakeDirs(parent); !status.ok()) return status;
  }
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return IoError("mkdir", dir, errno);
  return absl::OkStatus();
}

std::string Sha256Hex(absl::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), static_cast<size_t>(length)));
}

bool IsKeyFile(absl::string_view path) { return absl::EndsWith(path, ".key"); }

// The mode a file is archived and restored with: its permission bits, 0600 for private keys.
uint32_t ArchiveMode(absl::string_view path, uint32_t mode) {
  return IsKeyFile(path) ? 0600 : (mode & 07777);
}

std::string FormatMode(uint32_t mode) { return absl::StrFormat("%04o", mode); }

// Adds every regular file under `dir` (recursively, in name order) to `entries` as
// "<top>/<relative path>". Symlinks are followed to regular files only.
absl::Status CollectTree(const std::string& dir, const std::string& archive_prefix,
                         std::vector<TarEntry>* entries) {
  DIR* handle = opendir(dir.c_str());
  if (handle == nullptr) return IoError("opendir", dir, errno);
  std::vector<std::string> names;
  while (struct dirent* entry = readdir(handle)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  closedir(handle);
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    std::string path = absl::StrCat(dir, "/", name);
    std::string archive_path = absl::StrCat(archive_prefix, "/", name);
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) return IoError("lstat", path, errno);
    if (S_ISDIR(st.st_mode)) {
      if (absl::Status status = CollectTree(path, archive_path, entries); !status.ok()) {
        return status;
      }
      continue;
    }
    if (S_ISLNK(st.st_mode) && (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode))) {
      return absl::FailedPreconditionError(absl::StrCat(
          path,
          " is a symlink to something other than a regular file; backups hold regular files "
          "only: replace it with the file, or move it out of the directory"));
    }
    if (!S_ISREG(st.st_mode)) {
      return absl::FailedPreconditionError(absl::StrCat(
          path, " is not a regular file; backups hold regular files only: move it out"));
    }
    absl::StatusOr<std::string> data = ReadWholeFile(path);
    if (!data.ok()) return data.status();
    entries->push_back({archive_path, ArchiveMode(name, st.st_mode), *std::move(data)});
  }
  return absl::OkStatus();
}

absl::Status RequireDir(const std::string& dir, absl::string_view what) {
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return absl::NotFoundError(absl::StrCat(what, " directory ", dir, " does not exist"));
    }
    return IoError("stat", dir, errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(what, " path ", dir, " is not a directory"));
  }
  return absl::OkStatus();
}

// Holds an exclusive flock on a state directory's LOCK file, the one the state store takes.
class StateDirLock {
 public:
  // Takes the lock, creating the LOCK file if needed. FAILED_PRECONDITION naming the holder's
  // pid when a running Intermediate (or another store) has it.
  static absl::StatusOr<StateDirLock> Take(const std::string& state_dir) {
    std::string path = absl::StrCat(state_dir, "/", kStateLockFile);
    UniqueFd fd(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (fd.get() < 0) return IoError("open", path, errno);
    if (flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK) return IoError("flock", path, errno);
      char holder[32] = {};
      ssize_t n = pread(fd.get(), holder, sizeof(holder) - 1, 0);
      std::string pid(holder, n > 0 ? static_cast<size_t>(n) : 0);
      pid.erase(std::remove(pid.begin(), pid.end(), '\n'), pid.end());
      return absl::FailedPreconditionError(absl::StrCat(
          "the state directory ", state_dir, " is in use by a running Intermediate (pid ",
          pid.empty() ? "unknown" : pid, ")"));
    }
    return StateDirLock(std::move(fd));
  }

 private:
  explicit StateDirLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;  // Closing it releases the flock.
};

// True when a process holds the state directory's lock.
absl::StatusOr<bool> StateDirInUse(const std::string& state_dir) {
  std::string path = absl::StrCat(state_dir, "/", kStateLockFile);
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return false;
    return IoError("open", path, errno);
  }
  if (flock(fd.get(), LOCK_SH | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return true;
    return IoError("flock", path, errno);
  }
  return false;  // Closing fd releases the shared lock.
}

// The state files of a stopped Intermediate: opened through the store (which checks them), a
// snapshot taken, read while the store holds the lock.
absl::Status CollectStoppedState(const std::string& state_dir, std::vector<TarEntry>* entries) {
  absl::StatusOr<std::unique_ptr<controlplane::EmbeddedStateStore>> store =
      controlplane::EmbeddedStateStore::Open(state_dir);
  if (!store.ok()) return store.status();
  if (absl::Status status = (*store)->Snapshot(); !status.ok()) return status;
  for (const char* name : kStateFiles) {
    std::string path = absl::StrCat(state_dir, "/", name);
    absl::StatusOr<std::optional<std::string>> data = ReadFileIfExists(path);
    if (!data.ok()) return data.status();
    if (!data->has_value()) continue;
    entries->push_back({absl::StrCat(kStateTop, "/", name), 0600, **std::move(data)});
  }
  return absl::OkStatus();
}

// The state files of a running Intermediate, as of one instant: the snapshot is read before and
// after the journal; if it changed, a snapshot was taken (and the journal reset) meanwhile, and
// the pair is read again.
absl::Status CollectLiveState(const std::string& state_dir, std::vector<TarEntry>* entries) {
  std::string snapshot_path = absl::StrCat(state_dir, "/snapshot");
  std::string journal_path = absl::StrCat(state_dir, "/journal");
  for (int attempt = 0; attempt < kLiveCopyAttempts; ++attempt) {
    absl::StatusOr<std::optional<std::string>> before = ReadFileIfExists(snapshot_path);
    if (!before.ok()) return before.status();
    absl::StatusOr<std::optional<std::string>> journal = ReadFileIfExists(journal_path);
    if (!journal.ok()) return journal.status();
    absl::StatusOr<std::optional<std::string>> after = ReadFileIfExists(snapshot_path);
    if (!after.ok()) return after.status();
    if (*before != *after) continue;
    if (before->has_value()) {
      entries->push_back({absl::StrCat(kStateTop, "/snapshot"), 0600, **std::move(before)});
    }
    if (journal->has_value()) {
      entries->push_back({absl::StrCat(kStateTop, "/journal"), 0600, **std::move(journal)});
    }
    return absl::OkStatus();
  }
  return absl::UnavailableError(absl::StrCat("the state store in ", state_dir, " took ",
                                             kLiveCopyAttempts,
                                             " snapshots while being copied; try again, or stop "
                                             "the Intermediate first"));
}

// `s` as a JSON string literal, quoted and escaped by protobuf's JSON printer.
std::string JsonString(absl::string_view s) {
  google::protobuf::Value value;
  value.set_string_value(std::string(s));
  std::string json;
  // A string Value always converts.
  (void)google::protobuf::util::MessageToJsonString(value, &json);
  return json;
}

// The manifest, keys in a fixed order and one file a line, so that it reads and diffs well.
std::string EncodeManifest(const BackupCreateOptions& options, bool state_live,
                           const std::vector<BackupFile>& files) {
  std::string json = absl::StrCat(
      "{\n  \"format\": ", JsonString(kFormatName),
      ",\n  \"format_version\": ", kBackupFormatVersion, ",\n  \"created\": ",
      JsonString(absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", options.created, absl::UTCTimeZone())),
      ",\n  \"ferry_version\": ", JsonString(options.ferry_version),
      ",\n  \"state_copy\": ", JsonString(state_live ? "live" : "snapshot"), ",\n  \"files\": [");
  for (size_t i = 0; i < files.size(); ++i) {
    absl::StrAppend(&json, i == 0 ? "\n" : ",\n", "    {\"path\": ", JsonString(files[i].path),
                    ", \"size\": ", files[i].size,
                    ", \"mode\": ", JsonString(FormatMode(files[i].mode)),
                    ", \"sha256\": ", JsonString(files[i].sha256_hex), "}");
  }
  absl::StrAppend(&json, files.empty() ? "]\n}\n" : "\n  ]\n}\n");
  return json;
}

absl::Status ManifestError(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("the archive's ", kBackupManifestPath, " ", what,
                                          "; the archive is damaged or not a Ferry backup"));
}

// Checks an archive path and maps it onto the target directories. Every component must be a
// plain name, so no path can leave its directory.
absl::StatusOr<std::string> TargetFor(const std::string& path, const BackupDirs& targets) {
  std::vector<std::string> parts = absl::StrSplit(path, '/');
  for (const std::string& part : parts) {
    if (part.empty() || part == "." || part == ".." || part.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "archive path '", path, "' is absolute or holds an empty, '.' or '..' component; ",
          "refusing a path that could write outside the target directories"));
    }
  }
  std::string rest = absl::StrJoin(parts.begin() + 1, parts.end(), "/");
  if (parts.size() >= 2 && parts[0] == kConfigTop)
    return absl::StrCat(targets.config_dir, "/", rest);
  if (parts.size() >= 2 && parts[0] == kPkiTop) return absl::StrCat(targets.pki_dir, "/", rest);
  if (parts.size() == 2 && parts[0] == kStateTop &&
      std::find_if(std::begin(kStateFiles), std::end(kStateFiles),
                   [&](const char* name) { return rest == name; }) != std::end(kStateFiles)) {
    return absl::StrCat(targets.state_dir, "/", rest);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "archive path '", path, "' is outside config/, pki/, state/snapshot and state/journal"));
}

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

// The manifest's file list, checked for shape.
absl::StatusOr<std::vector<BackupFile>> ParseManifest(absl::string_view json, RestorePlan* plan) {
  google::protobuf::Struct manifest;
  if (!google::protobuf::util::JsonStringToMessage(std::string(json), &manifest).ok()) {
    return ManifestError("is not valid JSON");
  }
  const auto& fields = manifest.fields();
  auto string_field = [&](const char* name) -> std::optional<std::string> {
    auto it = fields.find(name);
    if (it == fields.end() || !it->second.has_string_value()) return std::nullopt;
    return it->second.string_value();
  };
  if (string_field("format") != std::optional<std::string>(kFormatName)) {
    return absl::FailedPreconditionError(
        absl::StrCat("the archive's manifest does not say format \"", kFormatName,
                     "\"; it is not a Ferry backup"));
  }
  auto version = fields.find("format_version");
  if (version == fields.end() || !version->second.has_number_value() ||
      version->second.number_value() != kBackupFormatVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("the archive's backup format_version is not ", kBackupFormatVersion,
                     "; restore it with the ferryctl that wrote it"));
  }
  plan->created = string_field("created").value_or("");
  plan->ferry_version = string_field("ferry_version").value_or("");
  plan->state_copy = string_field("state_copy").value_or("");
  auto files = fields.find("files");
  if (files == fields.end() || !files->second.has_list_value()) {
    return ManifestError("has no files list");
  }
  std::vector<BackupFile> out;
  for (const google::protobuf::Value& value : files->second.list_value().values()) {
    if (!value.has_struct_value()) return ManifestError("lists a file that is not an object");
    const auto& f = value.struct_value().fields();
    auto path = f.find("path"), size = f.find("size"), mode = f.find("mode"),
         sha = f.find("sha256");
    if (path == f.end() || size == f.end() || mode == f.end() || sha == f.end() ||
        !path->second.has_string_value() || !size->second.has_number_value() ||
        !mode->second.has_string_value() || !sha->second.has_string_value()) {
      return ManifestError("lists a file without a path, size, mode and sha256");
    }
    BackupFile file;
    file.path = path->second.string_value();
    double n = size->second.number_value();
    if (!(n >= 0) || n > 9007199254740992.0 || std::floor(n) != n) {
      return ManifestError(absl::StrCat("gives ", file.path, " a size that is not a whole number"));
    }
    file.size = static_cast<uint64_t>(n);
    const std::string& mode_text = mode->second.string_value();
    uint32_t parsed_mode = 0;
    for (char c : mode_text) parsed_mode = parsed_mode * 8 + static_cast<uint32_t>(c - '0');
    if (mode_text.empty() || mode_text.size() > 5 ||
        !std::all_of(mode_text.begin(), mode_text.end(),
                     [](char c) { return c >= '0' && c <= '7'; }) ||
        parsed_mode > 07777) {
      return ManifestError(absl::StrCat("gives ", file.path, " a malformed mode"));
    }
    file.mode = parsed_mode;
    file.sha256_hex = sha->second.string_value();
    out.push_back(std::move(file));
  }
  return out;
}

}  // namespace

bool RestorePlan::touches_existing() const {
  return std::any_of(actions.begin(), actions.end(), [](const RestoreAction& action) {
    return action.kind != RestoreAction::Kind::kCreate;
  });
}

absl::StatusOr<BackupSummary> CreateBackup(const BackupCreateOptions& options,
                                           const std::string& out_path) {
  const BackupDirs& dirs = options.dirs;
  for (absl::Status status :
       {RequireDir(dirs.config_dir, "config"), RequireDir(dirs.pki_dir, "PKI"),
        RequireDir(dirs.state_dir, "state")}) {
    if (!status.ok()) return status;
  }
  if (!options.overwrite && Exists(out_path)) {
    return absl::FailedPreconditionError(
        absl::StrCat(out_path, " already exists; choose another --out or pass --force"));
  }
  std::vector<TarEntry> entries;
  if (absl::Status status = CollectTree(dirs.config_dir, kConfigTop, &entries); !status.ok()) {
    return status;
  }
  if (absl::Status status = CollectTree(dirs.pki_dir, kPkiTop, &entries); !status.ok()) {
    return status;
  }
  BackupSummary summary;
  absl::StatusOr<bool> in_use = StateDirInUse(dirs.state_dir);
  if (!in_use.ok()) return in_use.status();
  if (*in_use && !options.live_state) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the state directory ", dirs.state_dir,
        " is in use by a running Intermediate; stop it for a consistent snapshot, or pass --live "
        "to copy its files as they are (crash-consistent)"));
  }
  summary.state_live = *in_use;
  absl::Status state = *in_use ? CollectLiveState(dirs.state_dir, &entries)
                               : CollectStoppedState(dirs.state_dir, &entries);
  if (!state.ok()) return state;

  for (const TarEntry& entry : entries) {
    summary.files.push_back({entry.path, entry.data.size(), entry.mode, Sha256Hex(entry.data)});
  }
  std::string manifest = EncodeManifest(options, summary.state_live, summary.files);
  std::string manifest_sum = absl::StrCat(Sha256Hex(manifest), "\n");
  entries.insert(entries.begin(),
                 {TarEntry{kBackupManifestPath, 0644, std::move(manifest)},
                  TarEntry{kBackupManifestSumPath, 0644, std::move(manifest_sum)}});
  absl::StatusOr<std::string> archive = EncodeTar(entries, options.created);
  if (!archive.ok()) return archive.status();

  std::string temp = TempPathFor(out_path);
  absl::Status written = WriteTempFile(temp, *archive, 0600);
  if (written.ok() && rename(temp.c_str(), out_path.c_str()) != 0) {
    written = IoError("rename", temp, errno);
  }
  if (!written.ok()) {
    unlink(temp.c_str());
    return written;
  }
  if (absl::Status status = SyncDir(DirName(out_path)); !status.ok()) return status;
  return summary;
}

absl::StatusOr<RestorePlan> PlanRestore(const std::string& archive_path,
                                        const BackupDirs& targets) {
  absl::StatusOr<std::string> bytes = ReadWholeFile(archive_path);
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<std::vector<TarEntry>> entries = DecodeTar(*bytes);
  if (!entries.ok()) {
    return absl::Status(entries.status().code(),
                        absl::StrCat(archive_path, ": ", entries.status().message()));
  }
  if (entries->empty() || entries->front().path != kBackupManifestPath) {
    return absl::DataLossError(absl::StrCat(archive_path, ": the first entry is not ",
                                            kBackupManifestPath, "; not a Ferry backup"));
  }
  if (entries->size() < 2 || (*entries)[1].path != kBackupManifestSumPath ||
      (*entries)[1].data != absl::StrCat(Sha256Hex(entries->front().data), "\n")) {
    return absl::DataLossError(absl::StrCat(archive_path, ": ", kBackupManifestPath,
                                            " does not match the checksum in ",
                                            kBackupManifestSumPath, "; the archive is damaged"));
  }
  RestorePlan plan;
  absl::StatusOr<std::vector<BackupFile>> listed = ParseManifest(entries->front().data, &plan);
  if (!listed.ok()) return listed.status();

  std::map<std::string, const BackupFile*> manifest;
  for (const BackupFile& file : *listed) {
    absl::StatusOr<std::string> target = TargetFor(file.path, targets);
    if (!target.ok()) return target.status();
    if (!manifest.emplace(file.path, &file).second) {
      return ManifestError(absl::StrCat("lists ", file.path, " twice"));
    }
  }
  std::set<std::string> seen;
  for (size_t i = 2; i < entries->size(); ++i) {
    TarEntry& entry = (*entries)[i];
    absl::StatusOr<std::string> target = TargetFor(entry.path, targets);
    if (!target.ok()) return target.status();
    auto it = manifest.find(entry.path);
    if (it == manifest.end()) {
      return absl::DataLossError(
          absl::StrCat("the archive holds ", entry.path, ", which its manifest does not list"));
    }
    if (!seen.insert(entry.path).second) {
      return absl::DataLossError(absl::StrCat("the archive holds ", entry.path, " twice"));
    }
    const BackupFile& file = *it->second;
    if (entry.data.size() != file.size || Sha256Hex(entry.data) != file.sha256_hex) {
      return absl::DataLossError(absl::StrCat(
          "the archive's ", entry.path, " does not match its manifest checksum (",
          entry.data.size(), " bytes, manifest says ", file.size, "); the archive is damaged"));
    }
    if (entry.mode != file.mode) {
      return absl::DataLossError(absl::StrCat("the archive's ", entry.path, " has mode ",
                                              FormatMode(entry.mode), ", its manifest says ",
                                              FormatMode(file.mode)));
    }
    RestoreAction action;
    action.target = *std::move(target);
    action.kind =
        Exists(action.target) ? RestoreAction::Kind::kOverwrite : RestoreAction::Kind::kCreate;
    action.archive_path = entry.path;
    action.mode = ArchiveMode(entry.path, file.mode);
    action.data = std::move(entry.data);
    plan.actions.push_back(std::move(action));
  }
  for (const auto& [path, file] : manifest) {
    if (seen.count(path) == 0) {
      return absl::DataLossError(
          absl::StrCat("the archive lacks ", path, ", which its manifest lists; it is partial"));
    }
  }
  // Replacing state means replacing all of it.
  bool restores_state = std::any_of(plan.actions.begin(), plan.actions.end(), [](const auto& a) {
    return absl::StartsWith(a.archive_path, absl::StrCat(kStateTop, "/"));
  });
  if (restores_state) {
    for (const char* name : kStateFiles) {
      std::string archived = absl::StrCat(kStateTop, "/", name);
      std::string target = absl::StrCat(targets.state_dir, "/", name);
      if (seen.count(archived) == 0 && Exists(target)) {
        RestoreAction remove;
        remove.kind = RestoreAction::Kind::kRemove;
        remove.target = target;
        plan.actions.push_back(std::move(remove));
      }
    }
  }
  return plan;
}

absl::Status ApplyRestore(const RestorePlan& plan, bool force) {
  if (!force && plan.touches_existing()) {
    std::vector<std::string> existing;
    for (const RestoreAction& action : plan.actions) {
      if (action.kind != RestoreAction::Kind::kCreate) existing.push_back(action.target);
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to replace existing files without --force: ", absl::StrJoin(existing, ", ")));
  }
  // Hold the state directory's lock so that no Intermediate starts on half-restored state.
  std::optional<StateDirLock> state_lock;
  for (const RestoreAction& action : plan.actions) {
    bool is_state = action.kind == RestoreAction::Kind::kRemove ||
                    absl::StartsWith(action.archive_path, absl::StrCat(kStateTop, "/"));
    if (!is_state || state_lock.has_value()) continue;
    std::string dir = DirName(action.target);
    if (absl::Status status = MakeDirs(dir); !status.ok()) return status;
    absl::StatusOr<StateDirLock> lock = StateDirLock::Take(dir);
    if (!lock.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat(lock.status().message(), "; stop it before restoring its state"));
    }
    state_lock.emplace(*std::move(lock));
  }

  std::vector<std::string> temps;
  absl::Status status;
  for (const RestoreAction& action : plan.actions) {
    if (action.kind == RestoreAction::Kind::kRemove) continue;
    status = MakeDirs(DirName(action.target));
    if (!status.ok()) break;
    std::string temp = TempPathFor(action.target);
    status = WriteTempFile(temp, action.data, action.mode);
    temps.push_back(std::move(temp));
    if (!status.ok()) break;
  }
  if (!status.ok()) {
    for (const std::string& temp : temps) unlink(temp.c_str());
    return status;
  }
  std::set<std::string> dirs;
  size_t next_temp = 0;
  for (const RestoreAction& action : plan.actions) {
    dirs.insert(DirName(action.target));
    if (action.kind == RestoreAction::Kind::kRemove) {
      if (unlink(action.target.c_str()) != 0 && errno != ENOENT) {
        return IoError("unlink", action.target, errno);
      }
      continue;
    }
    const std::string& temp = temps[next_temp++];
    if (rename(temp.c_str(), action.target.c_str()) != 0) {
      return IoError("rename", temp, errno);
    }
  }
  for (const std::string& dir : dirs) {
    if (absl::Status synced = SyncDir(dir); !synced.ok()) return synced;
  }
  return absl::OkStatus();
}

}  // namespace ferry::cli
