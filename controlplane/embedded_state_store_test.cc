#include "controlplane/embedded_state_store.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "controlplane/state_file_format.h"
#include "controlplane/state_store.h"
#include "controlplane/testing/state_store_conformance.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ferry::controlplane {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Optional;

// A fresh directory under TEST_TMPDIR that does not exist yet.
std::string NewStateDir() {
  static std::atomic<int> counter{0};
  const char* tmp = std::getenv("TEST_TMPDIR");
  const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = absl::StrCat(test->test_suite_name(), "_", test->name());
  for (char& c : name) {
    if (c == '/') c = '_';
  }
  return absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/", name, "_", counter++, "/state");
}

std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteFileOrDie(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

off_t FileSize(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

bool Exists(const std::string& path) { return FileSize(path) >= 0; }

std::unique_ptr<EmbeddedStateStore> OpenOrDie(const std::string& dir,
                                              EmbeddedStateStore::Options options = {}) {
  absl::StatusOr<std::unique_ptr<EmbeddedStateStore>> store =
      EmbeddedStateStore::Open(dir, options);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

std::vector<KeyValue> ListAll(StateStore& store) {
  absl::StatusOr<std::vector<KeyValue>> all = store.List("");
  EXPECT_TRUE(all.ok()) << all.status();
  return all.ok() ? *all : std::vector<KeyValue>{};
}

INSTANTIATE_TEST_SUITE_P(
    Embedded, StateStoreConformanceTest,
    ::testing::Values(StateStoreFactory{"Defaults",
                                        []() -> std::unique_ptr<StateStore> {
                                          return OpenOrDie(NewStateDir());
                                        }},
                      // Snapshots and journal resets in the middle of every conformance test.
                      StateStoreFactory{"SnapshotEvery2",
                                        []() -> std::unique_ptr<StateStore> {
                                          EmbeddedStateStore::Options options;
                                          options.snapshot_every = 2;
                                          return OpenOrDie(NewStateDir(), options);
                                        }}),
    StateStoreFactoryName);

TEST(EmbeddedStateStoreTest, StateSurvivesCloseAndReopen) {
  const std::string dir = NewStateDir();
  {
    auto store = OpenOrDie(dir);
    ASSERT_TRUE(store->Put("/services/t/a", "spec-a").ok());
    ASSERT_TRUE(store->Put("/services/t/b", "spec-b").ok());
    ASSERT_TRUE(store->Delete("/services/t/b").ok());
    ASSERT_TRUE(*store->CompareAndSwap("/leases/t/a", std::nullopt, "10.100.0.7"));
    ASSERT_TRUE(store->Apply({Mutation::Put("/x", "1"), Mutation::Put("/y", "2")}).ok());
    EXPECT_EQ(store->revision(), 5);
  }
  auto store = OpenOrDie(dir);
  EXPECT_THAT(ListAll(*store), ElementsAre(KeyValue{"/leases/t/a", "10.100.0.7"},
                                           KeyValue{"/services/t/a", "spec-a"}, KeyValue{"/x", "1"},
                                           KeyValue{"/y", "2"}));
  // Revisions continue where they stopped.
  EXPECT_EQ(store->revision(), 5);
  std::vector<int64_t> revisions;
  store->Watch("", [&](const WatchEvent& e) { revisions.push_back(e.revision); });
  ASSERT_TRUE(store->Put("/z", "3").ok());
  EXPECT_THAT(revisions, ElementsAre(6));
}

TEST(EmbeddedStateStoreTest, CreatesMissingDirectoriesPrivate) {
  const std::string dir = NewStateDir() + "/nested/deeper";
  auto store = OpenOrDie(dir + "/");
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->dir(), dir);
  struct stat st;
  ASSERT_EQ(stat(dir.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_TRUE(Exists(dir + "/journal"));
  EXPECT_TRUE(Exists(dir + "/LOCK"));
}

TEST(EmbeddedStateStoreTest, RefusesBadArguments) {
  EXPECT_EQ(EmbeddedStateStore::Open("").status().code(), absl::StatusCode::kInvalidArgument);
  EmbeddedStateStore::Options options;
  options.snapshot_every = 0;
  EXPECT_EQ(EmbeddedStateStore::Open(NewStateDir(), options).status().code(),
            absl::StatusCode::kInvalidArgument);

  const std::string file = NewStateDir();
  ASSERT_EQ(mkdir(file.substr(0, file.rfind('/')).c_str(), 0700), 0);
  WriteFileOrDie(file, "not a directory");
  absl::StatusOr<std::unique_ptr<EmbeddedStateStore>> store = EmbeddedStateStore::Open(file);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(file));
}

TEST(EmbeddedStateStoreTest, SecondOpenOfSameDirectoryIsRefusedUntilFirstCloses) {
  const std::string dir = NewStateDir();
  auto first = OpenOrDie(dir);
  ASSERT_TRUE(first->Put("/a", "1").ok());

  absl::StatusOr<std::unique_ptr<EmbeddedStateStore>> second = EmbeddedStateStore::Open(dir);
  ASSERT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(second.status().message()), HasSubstr(dir));
  EXPECT_THAT(std::string(second.status().message()), HasSubstr(absl::StrCat("pid ", getpid())));

  first.reset();
  auto third = OpenOrDie(dir);
  EXPECT_THAT(*third->Get("/a"), Optional(std::string("1")));
}

TEST(EmbeddedStateStoreTest, SnapshotsEveryNRecordsAndReplaysTheRest) {
  const std::string dir = NewStateDir();
  EmbeddedStateStore::Options options;
  options.snapshot_every = 3;
  {
    auto store = OpenOrDie(dir, options);
    for (int i = 0; i < 10; ++i) {
      ASSERT_TRUE(store->Put(absl::StrCat("/k", i), absl::StrCat("v", i)).ok());
    }
    ASSERT_TRUE(store->Delete("/k0").ok());
  }
  // Revisions 1-9 are in the snapshot; 10 and 11 are the journal's two records.
  absl::StatusOr<ParsedSnapshot> snapshot =
      ParseSnapshot(ReadFileOrDie(dir + "/snapshot"), "snapshot");
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  EXPECT_EQ(snapshot->revision, 9);
  EXPECT_EQ(snapshot->entries.size(), 9u);
  absl::StatusOr<ParsedJournal> journal = ParseJournal(ReadFileOrDie(dir + "/journal"), "journal");
  ASSERT_TRUE(journal.ok()) << journal.status();
  ASSERT_EQ(journal->records.size(), 2u);
  EXPECT_EQ(journal->records[0].revision, 10);
  EXPECT_THAT(journal->records[1].changes, ElementsAre(Mutation::Delete("/k0")));

  auto store = OpenOrDie(dir, options);
  EXPECT_EQ(store->revision(), 11);
  const std::vector<KeyValue> all = ListAll(*store);
  ASSERT_EQ(all.size(), 9u);
  EXPECT_EQ(all.front(), (KeyValue{"/k1", "v1"}));
  EXPECT_EQ(all.back(), (KeyValue{"/k9", "v9"}));
}

TEST(EmbeddedStateStoreTest, ExplicitSnapshotResetsTheJournal) {
  const std::string dir = NewStateDir();
  auto store = OpenOrDie(dir);
  ASSERT_TRUE(store->Put("/a", "1").ok());
  ASSERT_TRUE(store->Put("/b", "2").ok());
  ASSERT_TRUE(store->Snapshot().ok());
  EXPECT_EQ(FileSize(dir + "/journal"), static_cast<off_t>(kJournalFileHeaderBytes));
  ASSERT_TRUE(store->Put("/c", "3").ok());
  store.reset();
  store = OpenOrDie(dir);
  EXPECT_THAT(ListAll(*store),
              ElementsAre(KeyValue{"/a", "1"}, KeyValue{"/b", "2"}, KeyValue{"/c", "3"}));
  EXPECT_EQ(store->revision(), 3);
}

TEST(EmbeddedStateStoreTest, RecoversFromCrashBetweenSnapshotAndJournalReset) {
  const std::string dir = NewStateDir();
  std::string journal_before_snapshot;
  {
    auto store = OpenOrDie(dir);
    ASSERT_TRUE(store->Put("/a", "1").ok());
    ASSERT_TRUE(store->Put("/a", "2").ok());
    ASSERT_TRUE(store->Put("/b", "1").ok());
    journal_before_snapshot = ReadFileOrDie(dir + "/journal");
    ASSERT_TRUE(store->Snapshot().ok());
  }
  // As if the process died after renaming the snapshot but before resetting the journal.
  WriteFileOrDie(dir + "/journal", journal_before_snapshot);
  {
    auto store = OpenOrDie(dir);
    EXPECT_THAT(ListAll(*store), ElementsAre(KeyValue{"/a", "2"}, KeyValue{"/b", "1"}));
    EXPECT_EQ(store->revision(), 3);
    ASSERT_TRUE(store->Put("/c", "1").ok());  // appended after the stale records
  }
  auto store = OpenOrDie(dir);
  EXPECT_THAT(ListAll(*store),
              ElementsAre(KeyValue{"/a", "2"}, KeyValue{"/b", "1"}, KeyValue{"/c", "1"}));
  EXPECT_EQ(store->revision(), 4);
}

TEST(EmbeddedStateStoreTest, JournalThatSkipsRevisionsIsDataLoss) {
  const std::string dir = NewStateDir();
  {
    auto store = OpenOrDie(dir);
    ASSERT_TRUE(store->Put("/a", "1").ok());
    ASSERT_TRUE(store->Snapshot().ok());
    ASSERT_TRUE(store->Put("/b", "1").ok());
  }
  // Without the snapshot, the journal starts at revision 2: revision 1 is gone.
  ASSERT_EQ(unlink((dir + "/snapshot").c_str()), 0);
  absl::StatusOr<std::unique_ptr<EmbeddedStateStore>> store = EmbeddedStateStore::Open(dir);
  ASSERT_EQ(store.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(dir + "/journal"));
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("from revision 0 to 2"));
}

TEST(EmbeddedStateStoreTest, LeftoverTempSnapshotIsIgnoredAndRemoved) {
  const std::string dir = NewStateDir();
  {
    auto store = OpenOrDie(dir);
    ASSERT_TRUE(store->Put("/a", "1").ok());
  }
  WriteFileOrDie(dir + "/snapshot.tmp", "half-written garbage");
  auto store = OpenOrDie(dir);
  EXPECT_THAT(ListAll(*store), ElementsAre(KeyValue{"/a", "1"}));
  EXPECT_FALSE(Exists(dir + "/snapshot.tmp"));
}

TEST(EmbeddedStateStoreTest, WatchCallbackRunsAfterTheRecordIsInTheJournal) {
  const std::string dir = NewStateDir();
  auto store = OpenOrDie(dir);
  bool in_journal = false;
  bool visible = false;
  store->Watch("/services/", [&](const WatchEvent& event) {
    in_journal = ReadFileOrDie(dir + "/journal").find(event.value) != std::string::npos;
    visible = *store->Get(event.key) == std::optional<std::string>(event.value);
  });
  ASSERT_TRUE(store->Put("/services/t/a", "a-distinctive-value").ok());
  EXPECT_TRUE(in_journal);
  EXPECT_TRUE(visible);
}

TEST(EmbeddedStateStoreTest, UnknownFormatVersionIsFailedPrecondition) {
  const std::string dir = NewStateDir();
  OpenOrDie(dir).reset();
  std::string journal = ReadFileOrDie(dir + "/journal");
  journal[8] = 2;  // the version follows the 8-byte magic
  WriteFileOrDie(dir + "/journal", journal);
  absl::StatusOr<std::unique_ptr<EmbeddedStateStore>> store = EmbeddedStateStore::Open(dir);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("format version 2"));
}

// Four records; the journal size before each and after the last.
struct JournalLayout {
  std::string dir;
  std::vector<off_t> record_offsets;
  off_t end = 0;
};

constexpr int kLayoutRecords = 4;

JournalLayout WriteFourRecords() {
  JournalLayout layout;
  layout.dir = NewStateDir();
  auto store = OpenOrDie(layout.dir);
  for (int i = 0; i < kLayoutRecords; ++i) {
    layout.record_offsets.push_back(FileSize(layout.dir + "/journal"));
    EXPECT_TRUE(store->Put(absl::StrCat("/k", i), absl::StrCat("value-", i)).ok());
  }
  layout.end = FileSize(layout.dir + "/journal");
  return layout;
}

void ExpectFirstThreeRecordsOnly(StateStore& store) {
  EXPECT_THAT(ListAll(store), ElementsAre(KeyValue{"/k0", "value-0"}, KeyValue{"/k1", "value-1"},
                                          KeyValue{"/k2", "value-2"}));
}

// Bytes in one "/kN" -> "value-N" record: header, revision, count, type, key, value.
constexpr int kLastRecordBytes = 12 + 8 + 4 + 1 + (4 + 3) + (4 + 7);

class TornLastRecordTest : public ::testing::TestWithParam<int> {};

TEST_P(TornLastRecordTest, RecoversEveryEarlierRecordAndCutsTheTail) {
  const JournalLayout layout = WriteFourRecords();
  const std::string journal_path = layout.dir + "/journal";
  const off_t last = layout.record_offsets.back();
  ASSERT_EQ(layout.end - last, kLastRecordBytes);
  // A crash that left only GetParam() bytes of the last append.
  ASSERT_EQ(truncate(journal_path.c_str(), last + GetParam()), 0);
  {
    auto store = OpenOrDie(layout.dir);
    ASSERT_NE(store, nullptr);
    ExpectFirstThreeRecordsOnly(*store);
    EXPECT_EQ(store->revision(), 3);
    EXPECT_EQ(FileSize(journal_path), last);
    ASSERT_TRUE(store->Put("/k3", "again").ok());
  }
  auto store = OpenOrDie(layout.dir);
  EXPECT_THAT(*store->Get("/k3"), Optional(std::string("again")));
  EXPECT_EQ(store->revision(), 4);
}

INSTANTIATE_TEST_SUITE_P(EveryCut, TornLastRecordTest, ::testing::Range(0, kLastRecordBytes));

struct FlipCase {
  const char* name;
  int offset_in_record;  // negative: from the end of the record
};

// One of each part of a record: length, payload checksum, header checksum, payload start, end.
const FlipCase kFlipCases[] = {
    {"length", 0},    {"payload checksum", 5}, {"header checksum", 10},
    {"revision", 12}, {"last value byte", -1},
};

void FlipBit(const std::string& path, off_t offset) {
  std::string bytes = ReadFileOrDie(path);
  ASSERT_LT(static_cast<size_t>(offset), bytes.size());
  bytes[offset] ^= 0x10;
  WriteFileOrDie(path, bytes);
}

TEST(EmbeddedStateStoreTest, BitFlipInAMiddleRecordIsDataLossWithFileAndOffset) {
  for (const FlipCase& flip : kFlipCases) {
    SCOPED_TRACE(flip.name);
    const JournalLayout layout = WriteFourRecords();
    const off_t start = layout.record_offsets[1];
    const off_t end = layout.record_offsets[2];
    FlipBit(layout.dir + "/journal", flip.offset_in_record >= 0 ? start + flip.offset_in_record
                                                                : end + flip.offset_in_record);
    absl::StatusOr<std::unique_ptr<EmbeddedStateStore>> store =
        EmbeddedStateStore::Open(layout.dir);
    ASSERT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
    EXPECT_THAT(std::string(store.status().message()), HasSubstr(layout.dir + "/journal"));
    EXPECT_THAT(std::string(store.status().message()), HasSubstr(absl::StrCat("offset ", start)));
  }
}

TEST(EmbeddedStateStoreTest, BitFlipInTheLastRecordDropsOnlyThatRecord) {
  for (const FlipCase& flip : kFlipCases) {
    SCOPED_TRACE(flip.name);
    const JournalLayout layout = WriteFourRecords();
    const off_t start = layout.record_offsets.back();
    FlipBit(layout.dir + "/journal", flip.offset_in_record >= 0
                                         ? start + flip.offset_in_record
                                         : layout.end + flip.offset_in_record);
    auto store = OpenOrDie(layout.dir);
    ASSERT_NE(store, nullptr);
    ExpectFirstThreeRecordsOnly(*store);
    EXPECT_EQ(FileSize(layout.dir + "/journal"), start);
  }
}

TEST(EmbeddedStateStoreTest, CorruptSnapshotIsDataLossWithFile) {
  const std::string dir = NewStateDir();
  {
    auto store = OpenOrDie(dir);
    ASSERT_TRUE(store->Put("/services/t/a", "spec").ok());
    ASSERT_TRUE(store->Snapshot().ok());
  }
  const std::string snapshot_path = dir + "/snapshot";
  const std::string good = ReadFileOrDie(snapshot_path);
  struct Damage {
    const char* name;
    std::string bytes;
  };
  std::string magic = good;
  magic[0] = 'X';
  std::string entry = good;
  entry[good.size() - 8] ^= 1;
  std::string checksum = good;
  checksum[good.size() - 1] ^= 1;
  const Damage damages[] = {
      {"bad magic", magic},
      {"flipped entry byte", entry},
      {"flipped checksum", checksum},
      {"truncated", good.substr(0, good.size() - 3)},
      {"empty", ""},
  };
  for (const Damage& damage : damages) {
    SCOPED_TRACE(damage.name);
    WriteFileOrDie(snapshot_path, damage.bytes);
    absl::StatusOr<std::unique_ptr<EmbeddedStateStore>> store = EmbeddedStateStore::Open(dir);
    ASSERT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
    EXPECT_THAT(std::string(store.status().message()), HasSubstr(snapshot_path));
  }
  WriteFileOrDie(snapshot_path, good);
  EXPECT_THAT(*OpenOrDie(dir)->Get("/services/t/a"), Optional(std::string("spec")));
}

// Makes writes past `limit` bytes fail with EFBIG (instead of SIGXFSZ) while in scope.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t limit) {
    old_handler_ = signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &old_limit_);
    struct rlimit lowered = old_limit_;
    lowered.rlim_cur = limit;
    ok_ = setrlimit(RLIMIT_FSIZE, &lowered) == 0;
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &old_limit_);
    signal(SIGXFSZ, old_handler_);
  }
  bool ok() const { return ok_; }

 private:
  struct rlimit old_limit_;
  sighandler_t old_handler_;
  bool ok_ = false;
};

TEST(EmbeddedStateStoreTest, FailedAppendIsRolledBackAndTheStoreKeepsWorking) {
  const std::string dir = NewStateDir();
  const std::string journal_path = dir + "/journal";
  // Grow the journal past anything else this process writes (its log), so that the lowered
  // file-size limit below only bites on the journal.
  EmbeddedStateStore::Options options;
  options.fsync = false;
  auto store = OpenOrDie(dir, options);
  ASSERT_TRUE(store->Put("/ballast", std::string(4 << 20, 'b')).ok());
  ASSERT_TRUE(store->Put("/a", "1").ok());
  const off_t before = FileSize(journal_path);
  int events = 0;
  store->Watch("", [&](const WatchEvent&) { ++events; });

  absl::Status failed;
  {
    FileSizeLimit limit(before + 20);  // room for part of the next record only
    ASSERT_TRUE(limit.ok());
    failed = store->Put("/b", std::string(1000, 'x'));
  }
  EXPECT_EQ(failed.code(), absl::StatusCode::kResourceExhausted) << failed;
  EXPECT_THAT(std::string(failed.message()), HasSubstr(journal_path));
  EXPECT_EQ(FileSize(journal_path), before);
  EXPECT_EQ(*store->Get("/b"), std::nullopt);
  EXPECT_EQ(events, 0);
  EXPECT_EQ(store->revision(), 2);

  ASSERT_TRUE(store->Put("/c", "3").ok());
  EXPECT_EQ(events, 1);
  store.reset();
  store = OpenOrDie(dir, options);
  EXPECT_EQ(*store->Get("/b"), std::nullopt);
  EXPECT_THAT(*store->Get("/c"), Optional(std::string("3")));
  EXPECT_EQ(store->revision(), 3);
}

}  // namespace
}  // namespace ferry::controlplane
