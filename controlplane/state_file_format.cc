#include "controlplane/state_file_format.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "controlplane/crc32c.h"

namespace ferry::controlplane {
namespace {

constexpr absl::string_view kJournalMagic = "FERRYJNL";
constexpr absl::string_view kSnapshotMagic = "FERRYSNP";
constexpr uint8_t kPutTag = 1;
constexpr uint8_t kDeleteTag = 2;

void AppendU8(std::string& out, uint8_t v) { out.push_back(static_cast<char>(v)); }

void AppendU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFFu));
}

void AppendU64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFFu));
}

void AppendBytes(std::string& out, absl::string_view bytes) {
  AppendU32(out, static_cast<uint32_t>(bytes.size()));
  out.append(bytes.data(), bytes.size());
}

uint32_t LoadU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// Sequential bounds-checked reads over a byte string; every Read* returns false, leaving the
// output untouched, if the bytes run out.
class ByteReader {
 public:
  explicit ByteReader(absl::string_view bytes) : bytes_(bytes) {}

  size_t position() const { return pos_; }
  size_t remaining() const { return bytes_.size() - pos_; }

  void Skip(size_t n) { pos_ += std::min(n, remaining()); }
  bool ReadU8(uint8_t& v) {
    if (remaining() < 1) return false;
    v = static_cast<unsigned char>(bytes_[pos_++]);
    return true;
  }
  bool ReadU32(uint32_t& v) {
    if (remaining() < 4) return false;
    v = LoadU32(bytes_.data() + pos_);
    pos_ += 4;
    return true;
  }
  bool ReadU64(uint64_t& v) {
    uint32_t lo = 0;
    uint32_t hi = 0;
    if (remaining() < 8) return false;
    ReadU32(lo);
    ReadU32(hi);
    v = (uint64_t{hi} << 32) | lo;
    return true;
  }
  // A u32 length followed by that many bytes.
  bool ReadBytes(std::string& v) {
    const size_t start = pos_;
    uint32_t size = 0;
    if (!ReadU32(size) || remaining() < size) {
      pos_ = start;
      return false;
    }
    v.assign(bytes_.data() + pos_, size);
    pos_ += size;
    return true;
  }

 private:
  absl::string_view bytes_;
  size_t pos_ = 0;
};

absl::Status DataLoss(absl::string_view what, absl::string_view path, uint64_t offset,
                      absl::string_view problem) {
  return absl::DataLossError(absl::StrCat(what, " ", path, " is corrupt at offset ", offset, ": ",
                                          problem, "; restore the state directory from a backup"));
}

absl::Status CheckVersion(absl::string_view what, absl::string_view path, uint32_t version) {
  if (version == kStateFileFormatVersion) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat(what, " ", path, " has format version ", version, " but this build reads only ",
                   kStateFileFormatVersion, "; run the Ferry release that wrote it"));
}

// How a journal record at some offset looks: its header is only believed once its checksum passes.
enum class RecordCheck {
  kValid,
  kHeaderCutShort,   // fewer than kJournalRecordHeaderBytes left
  kBadHeader,        // header checksum mismatch
  kOversized,        // checksummed header with a length past kMaxJournalPayloadBytes
  kPayloadCutShort,  // header fine, the file ends inside the payload
  kBadPayload,       // payload checksum mismatch
};

struct RecordView {
  RecordCheck check = RecordCheck::kValid;
  uint32_t payload_length = 0;
  absl::string_view payload;
};

RecordView CheckRecordAt(absl::string_view bytes, size_t offset) {
  const size_t left = bytes.size() - offset;
  RecordView view;
  if (left < kJournalRecordHeaderBytes) {
    view.check = RecordCheck::kHeaderCutShort;
    return view;
  }
  const char* header = bytes.data() + offset;
  if (UnmaskCrc32c(LoadU32(header + 8)) != Crc32c(absl::string_view(header, 8))) {
    view.check = RecordCheck::kBadHeader;
    return view;
  }
  view.payload_length = LoadU32(header);
  if (view.payload_length > kMaxJournalPayloadBytes) {
    view.check = RecordCheck::kOversized;
    return view;
  }
  if (left - kJournalRecordHeaderBytes < view.payload_length) {
    view.check = RecordCheck::kPayloadCutShort;
    return view;
  }
  view.payload = bytes.substr(offset + kJournalRecordHeaderBytes, view.payload_length);
  if (UnmaskCrc32c(LoadU32(header + 4)) != Crc32c(view.payload)) {
    view.check = RecordCheck::kBadPayload;
  }
  return view;
}

// Whether a whole, checksum-valid record starts anywhere in [from, end of file).
bool ValidRecordStartsAtOrAfter(absl::string_view bytes, size_t from) {
  for (size_t offset = from; offset + kJournalRecordHeaderBytes <= bytes.size(); ++offset) {
    if (CheckRecordAt(bytes, offset).check == RecordCheck::kValid) return true;
  }
  return false;
}

bool DecodePayload(absl::string_view payload, JournalRecord& record, std::string& problem) {
  ByteReader reader(payload);
  uint64_t revision = 0;
  uint32_t count = 0;
  if (!reader.ReadU64(revision) || !reader.ReadU32(count)) {
    problem = "record payload shorter than its revision and count";
    return false;
  }
  record.revision = static_cast<int64_t>(revision);
  if (record.revision < 1 || count == 0) {
    problem = absl::StrCat("record has revision ", record.revision, " and ", count,
                           " changes; every record has a positive revision and a change");
    return false;
  }
  for (uint32_t i = 0; i < count; ++i) {
    uint8_t tag = 0;
    Mutation m;
    if (!reader.ReadU8(tag) || !reader.ReadBytes(m.key)) {
      problem = absl::StrCat("change ", i, " of ", count, " is cut short");
      return false;
    }
    if (tag == kPutTag) {
      m.type = ChangeType::kPut;
      if (!reader.ReadBytes(m.value)) {
        problem = absl::StrCat("value of change ", i, " of ", count, " is cut short");
        return false;
      }
    } else if (tag == kDeleteTag) {
      m.type = ChangeType::kDelete;
    } else {
      problem = absl::StrCat("change ", i, " has unknown type ", int{tag});
      return false;
    }
    if (m.key.empty()) {
      problem = absl::StrCat("change ", i, " has an empty key");
      return false;
    }
    record.changes.push_back(std::move(m));
  }
  if (reader.remaining() != 0) {
    problem = absl::StrCat(reader.remaining(), " unexpected bytes after the last change");
    return false;
  }
  return true;
}

}  // namespace

std::string EncodeJournalFileHeader() {
  std::string out(kJournalMagic);
  AppendU32(out, kStateFileFormatVersion);
  return out;
}

absl::StatusOr<std::string> EncodeJournalRecord(int64_t revision,
                                                const std::vector<Mutation>& changes) {
  size_t payload_size = 8 + 4;
  for (const Mutation& m : changes) {
    payload_size += 1 + 4 + m.key.size() + (m.type == ChangeType::kPut ? 4 + m.value.size() : 0);
  }
  if (payload_size > kMaxJournalPayloadBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("write of ", changes.size(), " changes encodes to ", payload_size,
                     " bytes; the state store takes at most ", kMaxJournalPayloadBytes,
                     " bytes per write: split it or store less"));
  }
  std::string out;
  out.reserve(kJournalRecordHeaderBytes + payload_size);
  out.resize(kJournalRecordHeaderBytes);  // filled in below, once the payload is known
  AppendU64(out, static_cast<uint64_t>(revision));
  AppendU32(out, static_cast<uint32_t>(changes.size()));
  for (const Mutation& m : changes) {
    AppendU8(out, m.type == ChangeType::kPut ? kPutTag : kDeleteTag);
    AppendBytes(out, m.key);
    if (m.type == ChangeType::kPut) AppendBytes(out, m.value);
  }
  std::string header;
  AppendU32(header, static_cast<uint32_t>(payload_size));
  AppendU32(header, MaskCrc32c(Crc32c(absl::string_view(out).substr(kJournalRecordHeaderBytes))));
  AppendU32(header, MaskCrc32c(Crc32c(header)));
  out.replace(0, kJournalRecordHeaderBytes, header);
  return out;
}

absl::StatusOr<ParsedJournal> ParseJournal(absl::string_view bytes, absl::string_view path) {
  constexpr absl::string_view kWhat = "state journal";
  if (bytes.size() < kJournalFileHeaderBytes) {
    return DataLoss(kWhat, path, 0,
                    absl::StrCat("file is ", bytes.size(), " bytes, shorter than its ",
                                 kJournalFileHeaderBytes, "-byte header"));
  }
  if (bytes.substr(0, kJournalMagic.size()) != kJournalMagic) {
    return DataLoss(kWhat, path, 0, "not a Ferry state journal (bad magic)");
  }
  absl::Status version = CheckVersion(kWhat, path, LoadU32(bytes.data() + kJournalMagic.size()));
  if (!version.ok()) return version;

  ParsedJournal parsed;
  size_t offset = kJournalFileHeaderBytes;
  while (offset < bytes.size()) {
    const RecordView view = CheckRecordAt(bytes, offset);
    const size_t record_end = offset + kJournalRecordHeaderBytes + view.payload_length;
    std::string torn;  // set when the damage may be the torn tail of the last append
    size_t resume_scan_at = offset + 1;
    switch (view.check) {
      case RecordCheck::kValid: {
        JournalRecord record;
        record.offset = offset;
        std::string problem;
        if (!DecodePayload(view.payload, record, problem)) {
          return DataLoss(kWhat, path, offset, problem);
        }
        parsed.records.push_back(std::move(record));
        offset = record_end;
        continue;
      }
      case RecordCheck::kHeaderCutShort:
        torn = absl::StrCat("incomplete record header (", bytes.size() - offset, " of ",
                            kJournalRecordHeaderBytes, " bytes)");
        break;
      case RecordCheck::kPayloadCutShort:
        // The header checked out, so the record really does run past the end of the file.
        torn = absl::StrCat("record cut short (", bytes.size() - offset, " of ",
                            record_end - offset, " bytes)");
        resume_scan_at = bytes.size();
        break;
      case RecordCheck::kOversized:
        return DataLoss(
            kWhat, path, offset,
            absl::StrCat("record claims ", view.payload_length,
                         " payload bytes, more than the limit of ", kMaxJournalPayloadBytes));
      case RecordCheck::kBadHeader:
        torn = "record header checksum mismatch";
        break;
      case RecordCheck::kBadPayload:
        torn = "record payload checksum mismatch";
        resume_scan_at = record_end;  // the checked header marks where the next record starts
        break;
    }
    if (ValidRecordStartsAtOrAfter(bytes, resume_scan_at)) {
      return DataLoss(kWhat, path, offset,
                      absl::StrCat(torn,
                                   ", and valid records follow, so this is not a torn last "
                                   "write and dropping the rest would lose committed changes"));
    }
    parsed.dropped_tail =
        absl::StrCat(torn, " at offset ", offset, "; dropped ", bytes.size() - offset, " bytes");
    break;
  }
  parsed.valid_bytes = parsed.dropped_tail.empty() ? bytes.size() : offset;
  return parsed;
}

std::string EncodeSnapshot(int64_t revision, const StateEntries& entries) {
  std::string out(kSnapshotMagic);
  AppendU32(out, kStateFileFormatVersion);
  AppendU64(out, static_cast<uint64_t>(revision));
  AppendU64(out, entries.size());
  for (const auto& [key, value] : entries) {
    AppendBytes(out, key);
    AppendBytes(out, value);
  }
  AppendU32(out, MaskCrc32c(Crc32c(out)));
  return out;
}

absl::StatusOr<ParsedSnapshot> ParseSnapshot(absl::string_view bytes, absl::string_view path) {
  constexpr absl::string_view kWhat = "state snapshot";
  constexpr size_t kFixedBytes = 8 + 4 + 8 + 8 + 4;
  if (bytes.size() < kFixedBytes) {
    return DataLoss(kWhat, path, bytes.size(),
                    absl::StrCat("file is ", bytes.size(), " bytes, shorter than the ", kFixedBytes,
                                 " bytes of an empty snapshot"));
  }
  if (bytes.substr(0, kSnapshotMagic.size()) != kSnapshotMagic) {
    return DataLoss(kWhat, path, 0, "not a Ferry state snapshot (bad magic)");
  }
  absl::Status version = CheckVersion(kWhat, path, LoadU32(bytes.data() + kSnapshotMagic.size()));
  if (!version.ok()) return version;
  const size_t body_size = bytes.size() - 4;
  if (UnmaskCrc32c(LoadU32(bytes.data() + body_size)) != Crc32c(bytes.substr(0, body_size))) {
    return DataLoss(kWhat, path, body_size,
                    absl::StrCat("checksum over bytes [0, ", body_size, ") does not match"));
  }

  ByteReader reader(bytes.substr(0, body_size));
  reader.Skip(kSnapshotMagic.size() + 4);  // magic and version, checked above
  uint64_t revision = 0;
  uint64_t count = 0;
  reader.ReadU64(revision);
  reader.ReadU64(count);
  ParsedSnapshot parsed;
  parsed.revision = static_cast<int64_t>(revision);
  if (parsed.revision < 0) {
    return DataLoss(kWhat, path, 12, absl::StrCat("negative revision ", parsed.revision));
  }
  for (uint64_t i = 0; i < count; ++i) {
    const size_t entry_offset = reader.position();
    std::string key;
    std::string value;
    if (!reader.ReadBytes(key) || !reader.ReadBytes(value)) {
      return DataLoss(kWhat, path, entry_offset,
                      absl::StrCat("entry ", i, " of ", count, " is cut short"));
    }
    if (key.empty() || (!parsed.entries.empty() && parsed.entries.rbegin()->first >= key)) {
      return DataLoss(kWhat, path, entry_offset,
                      absl::StrCat("entry ", i, " has an empty or out-of-order key"));
    }
    parsed.entries.emplace_hint(parsed.entries.end(), std::move(key), std::move(value));
  }
  if (reader.remaining() != 0) {
    return DataLoss(kWhat, path, reader.position(),
                    absl::StrCat(reader.remaining(), " unexpected bytes after the last entry"));
  }
  return parsed;
}

}  // namespace ferry::controlplane
