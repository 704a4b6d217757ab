#include "cli/tar_archive.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ferry::cli {
namespace {

// Field offsets and lengths of the ustar header block.
constexpr size_t kNameOffset = 0, kNameLen = 100;
constexpr size_t kModeOffset = 100, kModeLen = 8;
constexpr size_t kUidOffset = 108, kUidLen = 8;
constexpr size_t kGidOffset = 116, kGidLen = 8;
constexpr size_t kSizeOffset = 124, kSizeLen = 12;
constexpr size_t kMtimeOffset = 136, kMtimeLen = 12;
constexpr size_t kChecksumOffset = 148, kChecksumLen = 8;
constexpr size_t kTypeOffset = 156;
constexpr size_t kMagicOffset = 257;
constexpr size_t kPrefixOffset = 345, kPrefixLen = 155;

constexpr char kUstarMagic[8] = {'u', 's', 't', 'a', 'r', '\0', '0', '0'};  // magic + version
constexpr char kGnuMagic[8] = {'u', 's', 't', 'a', 'r', ' ', ' ', '\0'};

size_t PaddedSize(size_t size) {
  return (size + kTarBlockSize - 1) / kTarBlockSize * kTarBlockSize;
}

// Writes `value` as `len - 1` octal digits and a NUL.
void PutOctal(char* field, size_t len, uint64_t value) {
  std::string digits = absl::StrFormat("%0*o", static_cast<int>(len - 1), value);
  std::memcpy(field, digits.data(), len - 1);
  field[len - 1] = '\0';
}

uint32_t HeaderChecksum(const char* block) {
  uint32_t sum = 0;
  for (size_t i = 0; i < kTarBlockSize; ++i) {
    bool in_checksum = i >= kChecksumOffset && i < kChecksumOffset + kChecksumLen;
    sum += in_checksum ? static_cast<uint32_t>(' ') : static_cast<unsigned char>(block[i]);
  }
  return sum;
}

// A NUL- or space-terminated octal number, leading spaces allowed. nullopt if malformed
// (including the base-256 form, which we never write).
std::optional<uint64_t> ParseOctal(absl::string_view field) {
  size_t i = 0;
  while (i < field.size() && field[i] == ' ') ++i;
  uint64_t value = 0;
  size_t digits = 0;
  for (; i < field.size() && field[i] >= '0' && field[i] <= '7'; ++i, ++digits) {
    if (value > (UINT64_MAX >> 3)) return std::nullopt;
    value = value * 8 + static_cast<uint64_t>(field[i] - '0');
  }
  if (digits == 0) return std::nullopt;
  for (; i < field.size(); ++i) {
    if (field[i] != '\0' && field[i] != ' ') return std::nullopt;
  }
  return value;
}

// The bytes of a NUL-terminated (or full-length) string field.
absl::string_view StringField(const char* block, size_t offset, size_t len) {
  absl::string_view field(block + offset, len);
  size_t nul = field.find('\0');
  return nul == absl::string_view::npos ? field : field.substr(0, nul);
}

bool IsZeroBlock(absl::string_view block) {
  return std::all_of(block.begin(), block.end(), [](char c) { return c == '\0'; });
}

// Splits `path` into ustar's prefix and name fields, or says why it cannot.
absl::Status SplitPath(const std::string& path, std::string* prefix, std::string* name) {
  if (path.size() <= kNameLen) {
    prefix->clear();
    *name = path;
    return absl::OkStatus();
  }
  for (size_t slash = std::min(path.size() - 1, kPrefixLen);; --slash) {
    if (path[slash] == '/' && path.size() - slash - 1 <= kNameLen && slash > 0) {
      *prefix = path.substr(0, slash);
      *name = path.substr(slash + 1);
      return absl::OkStatus();
    }
    if (slash == 0) break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("path ", path, " is too long for a ustar archive (at most 155 bytes of ",
                   "directories and 100 of file name); shorten it"));
}

}  // namespace

absl::StatusOr<std::string> EncodeTar(const std::vector<TarEntry>& entries, absl::Time mtime) {
  std::string out;
  int64_t seconds = std::max<int64_t>(0, absl::ToUnixSeconds(mtime));
  for (const TarEntry& entry : entries) {
    if (entry.path.empty() || entry.path.front() == '/' || entry.path.back() == '/' ||
        entry.path.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tar entry path '", entry.path, "' must be relative, non-empty and name a file"));
    }
    if (entry.mode > 07777) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "tar entry %s has mode %o; modes go up to 07777", entry.path, entry.mode));
    }
    std::string prefix, name;
    if (absl::Status status = SplitPath(entry.path, &prefix, &name); !status.ok()) return status;
    char block[kTarBlockSize] = {};
    std::memcpy(block + kNameOffset, name.data(), name.size());
    PutOctal(block + kModeOffset, kModeLen, entry.mode);
    PutOctal(block + kUidOffset, kUidLen, 0);
    PutOctal(block + kGidOffset, kGidLen, 0);
    PutOctal(block + kSizeOffset, kSizeLen, entry.data.size());
    PutOctal(block + kMtimeOffset, kMtimeLen, static_cast<uint64_t>(seconds));
    block[kTypeOffset] = '0';
    std::memcpy(block + kMagicOffset, kUstarMagic, sizeof(kUstarMagic));
    std::memcpy(block + kPrefixOffset, prefix.data(), prefix.size());
    // The checksum field holds six octal digits, a NUL and a space.
    std::string checksum = absl::StrFormat("%06o", HeaderChecksum(block));
    std::memcpy(block + kChecksumOffset, checksum.data(), 6);
    block[kChecksumOffset + 6] = '\0';
    block[kChecksumOffset + 7] = ' ';
    out.append(block, kTarBlockSize);
    out.append(entry.data);
    out.append(PaddedSize(entry.data.size()) - entry.data.size(), '\0');
  }
  out.append(2 * kTarBlockSize, '\0');  // End-of-archive marker.
  return out;
}

absl::StatusOr<std::vector<TarEntry>> DecodeTar(absl::string_view archive) {
  std::vector<TarEntry> entries;
  size_t offset = 0;
  while (true) {
    if (archive.size() - offset < kTarBlockSize) {
      return absl::DataLossError(absl::StrCat(
          "archive is truncated at byte ", archive.size(), ": ",
          offset == archive.size() ? "no end-of-archive marker" : "a header block is cut short",
          " after ", entries.size(), " entries"));
    }
    absl::string_view header = archive.substr(offset, kTarBlockSize);
    if (IsZeroBlock(header)) {
      if (archive.size() - offset < 2 * kTarBlockSize ||
          !IsZeroBlock(archive.substr(offset + kTarBlockSize, kTarBlockSize))) {
        return absl::DataLossError(absl::StrCat(
            "archive has a lone zero block at byte ", offset,
            " (the end-of-archive marker is two; the archive is truncated or damaged)"));
      }
      if (!IsZeroBlock(archive.substr(offset + 2 * kTarBlockSize))) {
        return absl::DataLossError(
            absl::StrCat("archive has data after its end-of-archive marker at ", "byte ",
                         offset + 2 * kTarBlockSize));
      }
      return entries;
    }
    const char* block = header.data();
    std::optional<uint64_t> stored_sum =
        ParseOctal(absl::string_view(block + kChecksumOffset, kChecksumLen));
    if (!stored_sum.has_value() || *stored_sum != HeaderChecksum(block)) {
      return absl::DataLossError(absl::StrCat("tar header at byte ", offset,
                                              " fails its checksum; the archive is damaged"));
    }
    absl::string_view magic(block + kMagicOffset, sizeof(kUstarMagic));
    if (magic != absl::string_view(kUstarMagic, 8) && magic != absl::string_view(kGnuMagic, 8)) {
      return absl::FailedPreconditionError(
          absl::StrCat("tar header at byte ", offset, " is not a ustar header"));
    }
    TarEntry entry;
    absl::string_view prefix = StringField(block, kPrefixOffset, kPrefixLen);
    absl::string_view name = StringField(block, kNameOffset, kNameLen);
    entry.path = prefix.empty() ? std::string(name) : absl::StrCat(prefix, "/", name);
    char type = block[kTypeOffset];
    if (type != '0' && type != '\0') {
      return absl::FailedPreconditionError(absl::StrCat("tar entry '", entry.path, "' at byte ",
                                                        offset, " has type '", std::string(1, type),
                                                        "'; only regular files are accepted"));
    }
    std::optional<uint64_t> mode = ParseOctal(absl::string_view(block + kModeOffset, kModeLen));
    std::optional<uint64_t> size = ParseOctal(absl::string_view(block + kSizeOffset, kSizeLen));
    if (!mode.has_value() || !size.has_value() || *mode > 07777) {
      return absl::DataLossError(absl::StrCat("tar entry '", entry.path, "' at byte ", offset,
                                              " has a malformed mode or size"));
    }
    entry.mode = static_cast<uint32_t>(*mode);
    offset += kTarBlockSize;
    if (*size > archive.size() - offset || PaddedSize(*size) > archive.size() - offset) {
      return absl::DataLossError(absl::StrCat("archive is truncated inside entry '", entry.path,
                                              "' (", *size, " bytes from byte ", offset, ")"));
    }
    entry.data = std::string(archive.substr(offset, *size));
    offset += PaddedSize(*size);
    entries.push_back(std::move(entry));
  }
}

}  // namespace ferry::cli
