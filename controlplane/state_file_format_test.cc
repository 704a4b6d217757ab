#include "controlplane/state_file_format.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "controlplane/state_store.h"
#include "controlplane/state_table.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ferry::controlplane {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::string Record(int64_t revision, const std::vector<Mutation>& changes) {
  absl::StatusOr<std::string> record = EncodeJournalRecord(revision, changes);
  EXPECT_TRUE(record.ok()) << record.status();
  return record.ok() ? *record : "";
}

TEST(StateFileFormatTest, JournalRoundTrips) {
  const std::vector<Mutation> first = {Mutation::Put("/a", std::string("\0\xff", 2)),
                                       Mutation::Delete("/b")};
  const std::vector<Mutation> second = {Mutation::Put("/c", "")};
  const std::string bytes = EncodeJournalFileHeader() + Record(1, first) + Record(2, second);
  absl::StatusOr<ParsedJournal> parsed = ParseJournal(bytes, "j");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->records.size(), 2u);
  EXPECT_EQ(parsed->records[0].revision, 1);
  EXPECT_EQ(parsed->records[0].offset, kJournalFileHeaderBytes);
  EXPECT_EQ(parsed->records[0].changes, first);
  EXPECT_EQ(parsed->records[1].changes, second);
  EXPECT_EQ(parsed->valid_bytes, bytes.size());
  EXPECT_THAT(parsed->dropped_tail, IsEmpty());
}

TEST(StateFileFormatTest, EmptyJournalHasNoRecords) {
  absl::StatusOr<ParsedJournal> parsed = ParseJournal(EncodeJournalFileHeader(), "j");
  ASSERT_TRUE(parsed.ok());
  EXPECT_THAT(parsed->records, IsEmpty());
}

TEST(StateFileFormatTest, TailThatCannotBeARecordIsDropped) {
  const std::string good = EncodeJournalFileHeader() + Record(1, {Mutation::Put("/a", "1")});
  for (const std::string& tail : {std::string(40, '\0'), std::string("garbage after a crash")}) {
    absl::StatusOr<ParsedJournal> parsed = ParseJournal(good + tail, "j");
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(parsed->records.size(), 1u);
    EXPECT_EQ(parsed->valid_bytes, good.size());
    EXPECT_THAT(parsed->dropped_tail, HasSubstr(absl::StrCat("offset ", good.size())));
  }
}

TEST(StateFileFormatTest, DamageFollowedByAValidRecordIsDataLoss) {
  const std::string header = EncodeJournalFileHeader();
  const std::string garbage = "not a record at all";
  const std::string bytes = header + garbage + Record(1, {Mutation::Put("/a", "1")});
  absl::StatusOr<ParsedJournal> parsed = ParseJournal(bytes, "/state/journal");
  ASSERT_EQ(parsed.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(parsed.status().message()),
              HasSubstr(absl::StrCat("/state/journal is corrupt at offset ", header.size())));
}

TEST(StateFileFormatTest, BadJournalHeaderIsDataLoss) {
  for (const std::string& bytes :
       {std::string(""), std::string("FERRYJN"), std::string("NOTFERRY\x01\0\0\0", 12)}) {
    EXPECT_EQ(ParseJournal(bytes, "j").status().code(), absl::StatusCode::kDataLoss) << bytes;
  }
}

TEST(StateFileFormatTest, OversizedWriteIsRefused) {
  const std::string big(kMaxJournalPayloadBytes, 'x');
  EXPECT_EQ(EncodeJournalRecord(1, {Mutation::Put("/big", big)}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(StateFileFormatTest, SnapshotRoundTrips) {
  const StateEntries entries = {{"/a", ""}, {"/b", std::string("\0x", 2)}, {"/c/d", "v"}};
  absl::StatusOr<ParsedSnapshot> parsed = ParseSnapshot(EncodeSnapshot(42, entries), "s");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->revision, 42);
  EXPECT_EQ(parsed->entries, entries);

  parsed = ParseSnapshot(EncodeSnapshot(0, {}), "s");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->revision, 0);
  EXPECT_THAT(parsed->entries, IsEmpty());
}

TEST(StateFileFormatTest, EveryTruncatedSnapshotIsDataLoss) {
  const std::string good = EncodeSnapshot(3, {{"/a", "1"}, {"/b", "2"}});
  for (size_t size = 0; size < good.size(); ++size) {
    EXPECT_EQ(ParseSnapshot(good.substr(0, size), "s").status().code(), absl::StatusCode::kDataLoss)
        << "size " << size;
  }
}

}  // namespace
}  // namespace ferry::controlplane
