// A small POSIX ustar (IEEE 1003.1-1988 "ustar", as GNU tar and bsdtar read it) writer and
// reader for ferryctl's backups.
//
// Only what a backup needs: regular files with a relative path, a permission mode and their
// bytes, all held in memory (backups are configs, certificates and the state store: megabytes,
// not gigabytes). The reader is strict, because restore must refuse anything it did not write:
// every header checksum is verified, the archive must end with the two zero blocks of an
// end-of-archive marker, and any entry type other than a regular file (directories, links,
// devices, pax or GNU extension headers) is refused.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace ferry::cli {

inline constexpr size_t kTarBlockSize = 512;

// One regular file in an archive.
struct TarEntry {
  std::string path;   // Relative, '/'-separated, e.g. "pki/ca.key". No trailing '/'.
  uint32_t mode = 0;  // Permission bits (at most 07777).
  std::string data;   // The file's bytes.
};

// Encodes `entries`, in order, as a ustar archive whose entries all carry `mtime` and owner
// uid/gid 0. INVALID_ARGUMENT when a path is empty, absolute, ends in '/', holds a NUL byte or
// does not fit ustar's name/prefix split (at most 100 bytes after the last '/' used for the split,
// 155 before it), or a mode exceeds 07777. Pure function; thread-safe.
absl::StatusOr<std::string> EncodeTar(const std::vector<TarEntry>& entries, absl::Time mtime);

// Decodes a whole archive written by EncodeTar (or any ustar archive of regular files).
// DATA_LOSS, naming the entry and byte offset, for a header whose checksum does not match, a
// malformed numeric field, data or end-of-archive marker cut short, or non-zero bytes after the
// marker; FAILED_PRECONDITION for an entry that is not a regular file or not ustar. Paths are
// returned as stored (prefix + "/" + name); validating them is the caller's job. Pure function;
// thread-safe.
absl::StatusOr<std::vector<TarEntry>> DecodeTar(absl::string_view archive);

}  // namespace ferry::cli
