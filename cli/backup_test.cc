#include "cli/backup.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "cli/tar_archive.h"
#include "controlplane/embedded_state_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ferry::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

struct FileInfo {
  std::string data;
  uint32_t mode = 0;
  bool operator==(const FileInfo& other) const { return data == other.data && mode == other.mode; }
};

void WriteFile(const std::string& path, const std::string& data, mode_t mode) {
  std::ofstream(path, std::ios::binary) << data;
  ASSERT_EQ(chmod(path.c_str(), mode), 0) << path;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Every regular file under `dir` (recursively, relative path -> bytes and mode).
void ListTree(const std::string& dir, const std::string& rel,
              std::map<std::string, FileInfo>* out) {
  std::unique_ptr<DIR, int (*)(DIR*)> handle(opendir(dir.c_str()), closedir);
  if (handle == nullptr) return;
  while (struct dirent* entry = readdir(handle.get())) {
    std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    std::string path = dir + "/" + name;
    std::string rel_path = rel.empty() ? name : rel + "/" + name;
    struct stat st;
    ASSERT_EQ(lstat(path.c_str(), &st), 0);
    if (S_ISDIR(st.st_mode)) {
      ListTree(path, rel_path, out);
    } else {
      (*out)[rel_path] = {ReadFile(path), static_cast<uint32_t>(st.st_mode & 07777)};
    }
  }
}

std::map<std::string, FileInfo> Tree(const std::string& dir) {
  std::map<std::string, FileInfo> out;
  ListTree(dir, "", &out);
  return out;
}

std::string Sha256Hex(const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(digest), length));
}

// A manifest listing `files` the way CreateBackup writes it.
std::string Manifest(const std::vector<TarEntry>& files) {
  std::string json =
      R"({"format": "ferry-backup", "format_version": 1, "created": "2026-01-01T00:00:00Z", )"
      R"("ferry_version": "test", "state_copy": "snapshot", "files": [)";
  for (size_t i = 0; i < files.size(); ++i) {
    char mode[8];
    snprintf(mode, sizeof(mode), "%04o", files[i].mode);
    absl::StrAppend(&json, i == 0 ? "" : ", ", R"({"path": ")", files[i].path, R"(", "size": )",
                    files[i].data.size(), R"(, "mode": ")", mode, R"(", "sha256": ")",
                    Sha256Hex(files[i].data), R"("})");
  }
  return json + "]}";
}

class BackupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
    source_ = {root_ + "/config", root_ + "/pki", root_ + "/state"};
    target_ = {root_ + "/restored/config", root_ + "/restored/pki", root_ + "/restored/state"};
    ASSERT_EQ(mkdir(source_.config_dir.c_str(), 0755), 0);
    ASSERT_EQ(mkdir((source_.config_dir + "/tenants").c_str(), 0755), 0);
    ASSERT_EQ(mkdir(source_.pki_dir.c_str(), 0700), 0);
    WriteFile(source_.config_dir + "/intermediate.yaml", "listen: 127.0.0.1:0\n", 0644);
    WriteFile(source_.config_dir + "/tenants/acme.yaml", "name: acme\n", 0640);
    WriteFile(source_.pki_dir + "/ca.crt", "-----BEGIN CERTIFICATE-----\n", 0644);
    // A key that was left group-readable: the backup still carries and restores it as 0600.
    WriteFile(source_.pki_dir + "/ca.key", std::string("\0\x01key bytes\xff", 13), 0640);
    WriteFile(source_.pki_dir + "/relay-ops-relay-1.key", "relay key", 0600);
    auto store = controlplane::EmbeddedStateStore::Open(source_.state_dir);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->Put("/leases/a", "lease a").ok());
    ASSERT_TRUE((*store)->Put("/services/web", "spec").ok());
    ASSERT_TRUE((*store)->Delete("/leases/a").ok());
    ASSERT_TRUE((*store)->Put("/leases/b", "lease b").ok());
  }

  BackupCreateOptions Options() {
    BackupCreateOptions options;
    options.dirs = source_;
    options.ferry_version = "test-version";
    options.created = absl::FromUnixSeconds(1767225600);
    return options;
  }

  std::string CreateArchive() {
    std::string out = root_ + "/backup.tar";
    absl::StatusOr<BackupSummary> summary = CreateBackup(Options(), out);
    EXPECT_TRUE(summary.ok()) << summary.status();
    return out;
  }

  // Writes an archive of `entries` (the manifest not included) under `manifest`.
  std::string WriteArchive(const std::string& manifest, std::vector<TarEntry> entries) {
    entries.insert(entries.begin(),
                   {TarEntry{"MANIFEST.json", 0644, manifest},
                    TarEntry{"MANIFEST.sha256", 0644, Sha256Hex(manifest) + "\n"}});
    absl::StatusOr<std::string> archive = EncodeTar(entries, absl::UnixEpoch());
    EXPECT_TRUE(archive.ok()) << archive.status();
    std::string path = root_ + "/crafted.tar";
    std::ofstream(path, std::ios::binary | std::ios::trunc) << *archive;
    return path;
  }

  std::map<std::string, std::string> StoreContents(const std::string& dir) {
    std::map<std::string, std::string> out;
    auto store = controlplane::EmbeddedStateStore::Open(dir);
    EXPECT_TRUE(store.ok()) << store.status();
    if (!store.ok()) return out;
    auto list = (*store)->List("");
    EXPECT_TRUE(list.ok());
    for (const auto& kv : *list) out[kv.key] = kv.value;
    return out;
  }

  std::string root_;
  BackupDirs source_;
  BackupDirs target_;
};

TEST_F(BackupTest, RoundTripRestoresIdenticalBytesModesAndState) {
  std::string archive = CreateArchive();
  struct stat st;
  ASSERT_EQ(stat(archive.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u) << "a backup holds private keys";

  absl::StatusOr<RestorePlan> plan = PlanRestore(archive, target_);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->ferry_version, "test-version");
  EXPECT_EQ(plan->created, "2026-01-01T00:00:00Z");
  EXPECT_EQ(plan->state_copy, "snapshot");
  EXPECT_FALSE(plan->touches_existing());
  ASSERT_TRUE(ApplyRestore(*plan, /*force=*/false).ok());

  EXPECT_EQ(Tree(target_.config_dir), Tree(source_.config_dir));
  std::map<std::string, FileInfo> pki = Tree(target_.pki_dir);
  std::map<std::string, FileInfo> want_pki = Tree(source_.pki_dir);
  want_pki["ca.key"].mode = 0600;
  EXPECT_EQ(pki, want_pki);
  EXPECT_EQ(pki["ca.key"].mode, 0600u);
  EXPECT_EQ(pki["relay-ops-relay-1.key"].mode, 0600u);
  // The state: same files as the source (which got the snapshot the backup took), same contents.
  std::map<std::string, FileInfo> state = Tree(target_.state_dir);
  EXPECT_EQ(state["snapshot"], Tree(source_.state_dir)["snapshot"]);
  EXPECT_EQ(state["journal"], Tree(source_.state_dir)["journal"]);
  EXPECT_EQ(
      StoreContents(target_.state_dir),
      (std::map<std::string, std::string>{{"/leases/b", "lease b"}, {"/services/web", "spec"}}));
}

TEST_F(BackupTest, ManifestListsEveryFileWithChecksum) {
  std::string archive = CreateArchive();
  absl::StatusOr<std::vector<TarEntry>> entries = DecodeTar(ReadFile(archive));
  ASSERT_TRUE(entries.ok());
  std::vector<std::string> paths;
  for (const TarEntry& entry : *entries) paths.push_back(entry.path);
  EXPECT_EQ(paths, (std::vector<std::string>{
                       "MANIFEST.json", "MANIFEST.sha256", "config/intermediate.yaml",
                       "config/tenants/acme.yaml", "pki/ca.crt", "pki/ca.key",
                       "pki/relay-ops-relay-1.key", "state/snapshot", "state/journal"}));
  const std::string& manifest = entries->front().data;
  EXPECT_THAT(manifest, HasSubstr(R"("format": "ferry-backup")"));
  EXPECT_THAT(manifest, HasSubstr(R"("ferry_version": "test-version")"));
  EXPECT_THAT(manifest, HasSubstr(R"("created": "2026-01-01T00:00:00Z")"));
  EXPECT_EQ((*entries)[1].data, Sha256Hex(manifest) + "\n");
  for (size_t i = 2; i < entries->size(); ++i) {
    EXPECT_THAT(manifest, HasSubstr(Sha256Hex((*entries)[i].data))) << (*entries)[i].path;
  }
  EXPECT_EQ((*entries)[5].path, "pki/ca.key");
  EXPECT_EQ((*entries)[5].mode, 0600u) << "ca.key is archived 0600";
}

TEST_F(BackupTest, RunningIntermediateNeedsLive) {
  auto running = controlplane::EmbeddedStateStore::Open(source_.state_dir);
  ASSERT_TRUE(running.ok());
  std::string out = root_ + "/live.tar";
  absl::StatusOr<BackupSummary> refused = CreateBackup(Options(), out);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("--live"));
  EXPECT_NE(access(out.c_str(), F_OK), 0);

  BackupCreateOptions live = Options();
  live.live_state = true;
  absl::StatusOr<BackupSummary> summary = CreateBackup(live, out);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_TRUE(summary->state_live);
  ASSERT_TRUE((*running)->Put("/after", "not in the backup").ok());

  absl::StatusOr<RestorePlan> plan = PlanRestore(out, target_);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->state_copy, "live");
  ASSERT_TRUE(ApplyRestore(*plan, false).ok());
  EXPECT_EQ(
      StoreContents(target_.state_dir),
      (std::map<std::string, std::string>{{"/leases/b", "lease b"}, {"/services/web", "spec"}}));
}

TEST_F(BackupTest, ExistingFilesNeedForce) {
  std::string archive = CreateArchive();
  ASSERT_EQ(mkdir((root_ + "/restored").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(target_.config_dir.c_str(), 0755), 0);
  WriteFile(target_.config_dir + "/intermediate.yaml", "edited locally\n", 0644);
  WriteFile(target_.config_dir + "/unrelated.yaml", "kept\n", 0644);

  absl::StatusOr<RestorePlan> plan = PlanRestore(archive, target_);
  ASSERT_TRUE(plan.ok());
  EXPECT_TRUE(plan->touches_existing());
  absl::Status refused = ApplyRestore(*plan, /*force=*/false);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.message()), HasSubstr(target_.config_dir + "/intermediate.yaml"));
  EXPECT_EQ(ReadFile(target_.config_dir + "/intermediate.yaml"), "edited locally\n");
  EXPECT_NE(access(target_.pki_dir.c_str(), F_OK), 0) << "nothing was written";

  ASSERT_TRUE(ApplyRestore(*plan, /*force=*/true).ok());
  EXPECT_EQ(ReadFile(target_.config_dir + "/intermediate.yaml"), "listen: 127.0.0.1:0\n");
  EXPECT_EQ(ReadFile(target_.config_dir + "/unrelated.yaml"), "kept\n");
}

// A stale snapshot in the target would be loaded under a restored journal-only state.
TEST_F(BackupTest, RestoringStateRemovesStateFilesTheArchiveLacks) {
  std::string journal = ReadFile(source_.state_dir + "/journal");  // 4 records, no snapshot yet
  ASSERT_NE(access((source_.state_dir + "/snapshot").c_str(), F_OK), 0);
  std::string path = WriteArchive(Manifest({{"state/journal", 0600, journal}}),
                                  {{"state/journal", 0600, journal}});
  ASSERT_EQ(mkdir((root_ + "/restored").c_str(), 0755), 0);
  {
    auto other = controlplane::EmbeddedStateStore::Open(target_.state_dir);
    ASSERT_TRUE(other.ok());
    ASSERT_TRUE((*other)->Put("/stale", "x").ok());
    ASSERT_TRUE((*other)->Snapshot().ok());
  }
  absl::StatusOr<RestorePlan> plan = PlanRestore(path, target_);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->actions.size(), 2u);
  EXPECT_EQ(plan->actions[1].kind, RestoreAction::Kind::kRemove);
  EXPECT_EQ(plan->actions[1].target, target_.state_dir + "/snapshot");
  ASSERT_TRUE(ApplyRestore(*plan, /*force=*/true).ok());
  EXPECT_EQ(
      StoreContents(target_.state_dir),
      (std::map<std::string, std::string>{{"/leases/b", "lease b"}, {"/services/web", "spec"}}));
}

TEST_F(BackupTest, RestoreRefusedWhileIntermediateRuns) {
  std::string archive = CreateArchive();
  ASSERT_EQ(mkdir((root_ + "/restored").c_str(), 0755), 0);
  auto running = controlplane::EmbeddedStateStore::Open(target_.state_dir);
  ASSERT_TRUE(running.ok());
  absl::StatusOr<RestorePlan> plan = PlanRestore(archive, target_);
  ASSERT_TRUE(plan.ok());
  absl::Status refused = ApplyRestore(*plan, /*force=*/true);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.message()), HasSubstr("running Intermediate"));
  EXPECT_NE(access(target_.config_dir.c_str(), F_OK), 0) << "nothing was written";
}

// Every damaged archive is refused by PlanRestore, before anything is written.
TEST_F(BackupTest, DamagedArchivesAreRefused) {
  std::string good = ReadFile(CreateArchive());
  absl::StatusOr<std::vector<TarEntry>> entries = DecodeTar(good);
  ASSERT_TRUE(entries.ok());
  // Offset of pki/ca.crt's data: find its header, data follows it.
  size_t ca_crt_data = good.find("-----BEGIN CERTIFICATE-----");
  ASSERT_NE(ca_crt_data, std::string::npos);
  std::string flipped = good;
  flipped[ca_crt_data + 3] ^= 0x20;
  size_t manifest_byte = good.find("test-version");
  std::string manifest_flipped = good;
  manifest_flipped[manifest_byte] = 'T';

  TarEntry yaml{"config/a.yaml", 0644, "a: 1\n"};
  TarEntry extra{"config/extra.yaml", 0644, "b: 2\n"};
  struct Case {
    const char* label;
    std::string archive;
    absl::StatusCode code;
    const char* message;
  };
  std::vector<Case> cases = {
      {"corrupt data byte", flipped, absl::StatusCode::kDataLoss,
       "pki/ca.crt does not match its manifest checksum"},
      {"corrupt manifest byte", manifest_flipped, absl::StatusCode::kDataLoss,
       "MANIFEST.json does not match the checksum"},
      {"truncated", good.substr(0, good.size() / 2), absl::StatusCode::kDataLoss, "truncated"},
      {"truncated at block boundary", good.substr(0, 3 * kTarBlockSize),
       absl::StatusCode::kDataLoss, "truncated"},
  };
  // Manifest and content disagree.
  auto crafted = [&](std::string manifest, std::vector<TarEntry> files) {
    std::string sum = Sha256Hex(manifest) + "\n";
    files.insert(files.begin(), {TarEntry{"MANIFEST.json", 0644, std::move(manifest)},
                                 TarEntry{"MANIFEST.sha256", 0644, std::move(sum)}});
    absl::StatusOr<std::string> archive = EncodeTar(files, absl::UnixEpoch());
    return archive.ok() ? *archive : std::string();
  };
  cases.push_back({"extra file", crafted(Manifest({yaml}), {yaml, extra}),
                   absl::StatusCode::kDataLoss, "config/extra.yaml, which its manifest does not"});
  cases.push_back({"missing file", crafted(Manifest({yaml, extra}), {yaml}),
                   absl::StatusCode::kDataLoss, "lacks config/extra.yaml"});
  cases.push_back({"listed twice", crafted(Manifest({yaml, yaml}), {yaml}),
                   absl::StatusCode::kDataLoss, "twice"});
  cases.push_back({"stored twice", crafted(Manifest({yaml}), {yaml, yaml}),
                   absl::StatusCode::kDataLoss, "twice"});
  cases.push_back({"mode differs", crafted(Manifest({yaml}), {{"config/a.yaml", 0777, "a: 1\n"}}),
                   absl::StatusCode::kDataLoss, "mode"});
  cases.push_back({"no manifest", *EncodeTar({yaml, yaml}, absl::UnixEpoch()),
                   absl::StatusCode::kDataLoss, "first entry is not MANIFEST.json"});
  cases.push_back({"manifest not json", crafted("{not json", {}), absl::StatusCode::kDataLoss,
                   "not valid JSON"});
  cases.push_back({"other format",
                   crafted(absl::StrReplaceAll(Manifest({}), {{"ferry-backup", "other"}}), {}),
                   absl::StatusCode::kFailedPrecondition, "not a Ferry backup"});
  cases.push_back({"future version",
                   crafted(absl::StrReplaceAll(
                               Manifest({}), {{"\"format_version\": 1", "\"format_version\": 2"}}),
                           {}),
                   absl::StatusCode::kFailedPrecondition, "format_version"});
  // Paths that would leave the target directories.
  for (const char* path : {"config/../../escape", "../escape", "/etc/passwd", "pki/./ca.key",
                           "config//a", "elsewhere/a", "state/LOCK", "state/journal/x", "config"}) {
    TarEntry bad{path, 0644, "x"};
    std::string archive = crafted(Manifest({bad}), {bad});
    // ustar cannot even hold some of them: the manifest alone must be refused.
    if (archive.empty()) archive = crafted(Manifest({bad}), {});
    cases.push_back({path, archive, absl::StatusCode::kInvalidArgument, "archive path"});
  }
  // An absolute path in a tar header (as another tool might write it), not in the manifest.
  {
    std::string archive = crafted(Manifest({yaml}), {yaml, {"_etc/passwd", 0644, "x"}});
    size_t header = archive.rfind("_etc/passwd");  // The name field starts the header block.
    archive[header] = '/';
    unsigned sum = 0;
    for (size_t i = 0; i < kTarBlockSize; ++i) {
      sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(archive[header + i]);
    }
    char field[8];
    snprintf(field, sizeof(field), "%06o", sum);
    archive.replace(header + 148, 6, field, 6);
    cases.push_back({"absolute tar entry", archive, absl::StatusCode::kInvalidArgument,
                     "archive path '/etc/passwd'"});
  }
  for (const Case& c : cases) {
    std::string path = root_ + "/case.tar";
    std::ofstream(path, std::ios::binary | std::ios::trunc) << c.archive;
    absl::StatusOr<RestorePlan> plan = PlanRestore(path, target_);
    EXPECT_EQ(plan.status().code(), c.code) << c.label << ": " << plan.status();
    EXPECT_THAT(std::string(plan.status().message()), HasSubstr(c.message)) << c.label;
  }
  EXPECT_NE(access((root_ + "/restored").c_str(), F_OK), 0) << "nothing was written";
}

TEST_F(BackupTest, CreateRefusals) {
  std::string out = root_ + "/backup.tar";
  BackupCreateOptions missing = Options();
  missing.dirs.pki_dir = root_ + "/no-such-pki";
  EXPECT_EQ(CreateBackup(missing, out).status().code(), absl::StatusCode::kNotFound);

  ASSERT_TRUE(CreateBackup(Options(), out).ok());
  absl::StatusOr<BackupSummary> again = CreateBackup(Options(), out);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("--force"));
  BackupCreateOptions overwrite = Options();
  overwrite.overwrite = true;
  EXPECT_TRUE(CreateBackup(overwrite, out).ok());

  ASSERT_EQ(mkfifo((source_.config_dir + "/fifo").c_str(), 0600), 0);
  overwrite.overwrite = true;
  absl::StatusOr<BackupSummary> fifo = CreateBackup(overwrite, out);
  EXPECT_EQ(fifo.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(fifo.status().message()), HasSubstr("not a regular file"));
}

}  // namespace
}  // namespace ferry::cli
