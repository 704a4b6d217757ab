// The on-disk formats of EmbeddedStateStore: the journal (one record per committed revision) and
// the snapshot (the whole table at one revision). Pure encode/parse functions on byte strings, so
// the crash-recovery rules can be read and tested apart from file handling. All integers are
// little-endian.
//
// Journal file:  "FERRYJNL" | u32 version (1) | record...
//   record:      u32 payload length | u32 masked CRC-32C of the payload |
//                u32 masked CRC-32C of the previous 8 bytes | payload
//   payload:     u64 revision | u32 count | count x (u8 type (1 put, 2 delete) |
//                u32 key length | key | for puts: u32 value length | value)
// The header carries its own checksum so that a damaged length can never pass for the torn tail
// of the last write: whatever a header says has been checked before it is believed.
//
// Snapshot file: "FERRYSNP" | u32 version (1) | u64 revision | u64 count |
//                count x (u32 key length | key | u32 value length | value), keys strictly sorted |
//                u32 masked CRC-32C of everything before it

#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "controlplane/state_store.h"
#include "controlplane/state_table.h"

namespace ferry::controlplane {

inline constexpr uint32_t kStateFileFormatVersion = 1;
inline constexpr size_t kJournalFileHeaderBytes = 12;
inline constexpr size_t kJournalRecordHeaderBytes = 12;
// Bound on one record's payload: one write of the control plane is a few KiB; this keeps a
// damaged or hostile file from asking for gigabytes.
inline constexpr size_t kMaxJournalPayloadBytes = size_t{64} << 20;

// The bytes a new, empty journal file starts with.
std::string EncodeJournalFileHeader();

// One framed journal record for `changes` committed as `revision`. INVALID_ARGUMENT if the
// payload would exceed kMaxJournalPayloadBytes.
absl::StatusOr<std::string> EncodeJournalRecord(int64_t revision,
                                                const std::vector<Mutation>& changes);

struct JournalRecord {
  uint64_t offset = 0;  // where the record starts in the file
  int64_t revision = 0;
  std::vector<Mutation> changes;
};

struct ParsedJournal {
  std::vector<JournalRecord> records;
  // Length of the file up to the end of the last good record. Less than the file size exactly
  // when a damaged tail was dropped.
  uint64_t valid_bytes = 0;
  // Empty, or why the bytes after valid_bytes were dropped (for the operator's log).
  std::string dropped_tail;
};

// Parses a whole journal file; `path` only names it in messages.
//
// The last record may be torn by a crash mid-append (cut short, or failing its checksum): it is
// dropped and described in dropped_tail, not an error, since its write was never acknowledged.
// Damage with a valid record anywhere after it cannot be a torn append, and is DATA_LOSS naming the
// path and offset, as are a bad file header and a record whose checksums pass but whose payload
// does not decode. FAILED_PRECONDITION for a format version this build does not know.
absl::StatusOr<ParsedJournal> ParseJournal(absl::string_view bytes, absl::string_view path);

// A snapshot file of `entries` at `revision`.
std::string EncodeSnapshot(int64_t revision, const StateEntries& entries);

struct ParsedSnapshot {
  int64_t revision = 0;
  StateEntries entries;
};

// Parses a whole snapshot file. Any damage is DATA_LOSS naming `path` and the offset (a snapshot
// is written aside and renamed into place, so it is never legitimately torn);
// FAILED_PRECONDITION for an unknown format version.
absl::StatusOr<ParsedSnapshot> ParseSnapshot(absl::string_view bytes, absl::string_view path);

}  // namespace ferry::controlplane
