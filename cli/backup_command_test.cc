#include "cli/backup_command.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "controlplane/embedded_state_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ferry::cli {
namespace {

using ::testing::HasSubstr;

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

Result RunBackup(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  Result result;
  result.code = RunBackupCommand(args, out, err);
  result.out = out.str();
  result.err = err.str();
  return result;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class BackupCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
    for (const char* dir : {"/config", "/pki"}) {
      ASSERT_EQ(mkdir((root_ + dir).c_str(), 0755), 0);
    }
    std::ofstream(root_ + "/config/connector.yaml") << "services: []\n";
    std::ofstream(root_ + "/pki/ca.key") << "secret";
    auto store = controlplane::EmbeddedStateStore::Open(root_ + "/state");
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->Put("/k", "v").ok());
  }

  std::vector<std::string> SourceDirs() {
    return {"--config_dir=" + root_ + "/config", "--pki_dir=" + root_ + "/pki",
            "--state_dir=" + root_ + "/state"};
  }
  std::vector<std::string> TargetDirs() {
    return {"--config_dir=" + root_ + "/new/config", "--pki_dir=" + root_ + "/new/pki",
            "--state_dir=" + root_ + "/new/state"};
  }
  static std::vector<std::string> Concat(std::vector<std::string> a,
                                         const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  }
  std::string Create() {
    std::string archive = root_ + "/b.tar";
    Result created = RunBackup(Concat({"create", "--out=" + archive}, SourceDirs()));
    EXPECT_EQ(created.code, 0) << created.err;
    return archive;
  }

  std::string root_;
};

TEST_F(BackupCommandTest, UsageAndHelp) {
  struct Case {
    std::vector<std::string> args;
    int code;
    const char* out;
    const char* err;
  };
  const Case cases[] = {
      {{}, 2, "", "Usage: ferryctl backup <command>"},
      {{"help"}, 0, "restore", ""},
      {{"create", "--help"}, 0, "--state_dir=DIR", ""},
      {{"restore", "--help"}, 0, "--dry-run", ""},
      {{"create", "--out=x.tar"}, 2, "", "missing --config_dir"},
      {{"restore", "--config_dir=a", "--pki_dir=b", "--state_dir=c"}, 2, "", "missing --in"},
      {{"restore", "--bogus"}, 2, "", "unknown flag --bogus"},
      {{"create", "extra"}, 2, "", "unexpected argument 'extra'"},
      {{"frob"}, 2, "", "unknown command 'frob'"},
  };
  for (const Case& c : cases) {
    Result result = RunBackup(c.args);
    std::string label = absl::StrCat("args[0]=", c.args.empty() ? "" : c.args[0]);
    EXPECT_EQ(result.code, c.code) << label << "\n" << result.err;
    EXPECT_THAT(result.out, HasSubstr(c.out)) << label;
    EXPECT_THAT(result.err, HasSubstr(c.err)) << label;
  }
}

TEST_F(BackupCommandTest, CreateThenRestore) {
  std::string archive = Create();
  Result restored = RunBackup(Concat({"restore", "--in=" + archive}, TargetDirs()));
  ASSERT_EQ(restored.code, 0) << restored.err;
  EXPECT_THAT(restored.out,
              HasSubstr("create    " + root_ + "/new/pki/ca.key (6 bytes, mode 0600)"));
  EXPECT_EQ(ReadFile(root_ + "/new/config/connector.yaml"), "services: []\n");

  // Again: every file exists now.
  Result refused = RunBackup(Concat({"restore", "--in=" + archive}, TargetDirs()));
  EXPECT_EQ(refused.code, 1);
  EXPECT_THAT(refused.err, HasSubstr("without --force"));
  Result forced = RunBackup(Concat({"restore", "--in=" + archive, "--force"}, TargetDirs()));
  EXPECT_EQ(forced.code, 0) << forced.err;
  EXPECT_THAT(forced.out, HasSubstr("overwrite " + root_ + "/new/pki/ca.key"));
}

TEST_F(BackupCommandTest, DryRunWritesNothing) {
  std::string archive = Create();
  Result planned = RunBackup(Concat({"restore", "--in=" + archive, "--dry-run"}, TargetDirs()));
  ASSERT_EQ(planned.code, 0) << planned.err;
  EXPECT_THAT(planned.out, HasSubstr("Dry run"));
  EXPECT_THAT(planned.out, HasSubstr("create    " + root_ + "/new/config/connector.yaml"));
  EXPECT_THAT(planned.out, HasSubstr(root_ + "/new/state/snapshot"));
  EXPECT_NE(access((root_ + "/new").c_str(), F_OK), 0) << "dry run created the target";
}

TEST_F(BackupCommandTest, CorruptArchiveExitsOneAndWritesNothing) {
  std::string archive = Create();
  std::string bytes = ReadFile(archive);
  size_t at = bytes.find("services: []");
  ASSERT_NE(at, std::string::npos);
  bytes[at] = 'S';
  std::ofstream(archive, std::ios::binary | std::ios::trunc) << bytes;
  Result refused = RunBackup(Concat({"restore", "--in=" + archive, "--force"}, TargetDirs()));
  EXPECT_EQ(refused.code, 1);
  EXPECT_THAT(refused.err, HasSubstr("config/connector.yaml does not match"));
  EXPECT_NE(access((root_ + "/new").c_str(), F_OK), 0);
}

TEST_F(BackupCommandTest, RunningIntermediateNeedsLive) {
  auto running = controlplane::EmbeddedStateStore::Open(root_ + "/state");
  ASSERT_TRUE(running.ok());
  std::string archive = root_ + "/live.tar";
  Result refused = RunBackup(Concat({"create", "--out=" + archive}, SourceDirs()));
  EXPECT_EQ(refused.code, 1);
  EXPECT_THAT(refused.err, HasSubstr("--live"));
  Result live = RunBackup(Concat({"create", "--out=" + archive, "--live"}, SourceDirs()));
  EXPECT_EQ(live.code, 0) << live.err;
  EXPECT_THAT(live.out, HasSubstr("copied live"));
}

}  // namespace
}  // namespace ferry::cli
