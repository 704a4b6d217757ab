// Runs the real ferryctl binary for `backup create` and `backup restore`, as an operator would.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/testing/ferryctl_process.h"
#include "controlplane/embedded_state_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ferry::cli {
namespace {

using ::testing::HasSubstr;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

uint32_t ModeOf(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

class FerryctlBackupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    binary_ = testing::FerryctlBinaryPath();
    ASSERT_EQ(access(binary_.c_str(), X_OK), 0) << binary_;
    work_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_EQ(mkdir(work_.c_str(), 0755), 0);
  }

  // Runs `ferryctl args...` in work_.
  testing::FerryctlRun Run(const std::vector<std::string>& args) {
    testing::FerryctlRun result = testing::RunFerryctl(binary_, work_, args);
    EXPECT_NE(result.exit_code, -1) << "ferryctl crashed";
    return result;
  }

  std::string binary_;
  std::string work_;
};

TEST_F(FerryctlBackupTest, CreateAndRestoreThroughTheBinary) {
  ASSERT_EQ(mkdir((work_ + "/etc").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((work_ + "/pki").c_str(), 0700), 0);
  std::ofstream(work_ + "/etc/connector.yaml") << "intermediates: [\"127.0.0.1:1\"]\n";
  testing::FerryctlRun pki = Run({"pki", "init", "--dir=pki"});
  ASSERT_EQ(pki.exit_code, 0) << pki.err;
  {
    auto store = controlplane::EmbeddedStateStore::Open(work_ + "/state");
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->Put("/services/demo/web", "spec").ok());
  }

  testing::FerryctlRun created = Run({"backup", "create", "--config_dir=etc", "--pki_dir=pki",
                                      "--state_dir=state", "--out=ferry.tar"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  EXPECT_THAT(created.out, HasSubstr("Wrote ferry.tar"));
  EXPECT_EQ(ModeOf(work_ + "/ferry.tar"), 0600u);

  testing::FerryctlRun dry = Run({"backup", "restore", "--in=ferry.tar", "--config_dir=new/etc",
                                  "--pki_dir=new/pki", "--state_dir=new/state", "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_THAT(dry.out, HasSubstr("create    new/pki/ca.key"));
  EXPECT_NE(access((work_ + "/new").c_str(), F_OK), 0);

  testing::FerryctlRun restored =
      Run({"backup", "restore", "--in=ferry.tar", "--config_dir=new/etc", "--pki_dir=new/pki",
           "--state_dir=new/state"});
  ASSERT_EQ(restored.exit_code, 0) << restored.err;
  for (const char* file : {"etc/connector.yaml", "pki/ca.crt", "pki/ca.key"}) {
    EXPECT_EQ(ReadAll(work_ + "/new/" + file), ReadAll(work_ + "/" + file)) << file;
    EXPECT_EQ(ModeOf(work_ + "/new/" + file), ModeOf(work_ + "/" + file)) << file;
  }
  EXPECT_EQ(ModeOf(work_ + "/new/pki/ca.key"), 0600u);
  auto store = controlplane::EmbeddedStateStore::Open(work_ + "/new/state");
  ASSERT_TRUE(store.ok()) << store.status();
  auto value = (*store)->Get("/services/demo/web");
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(value->value_or(""), "spec");

  // A truncated copy is refused with exit code 1 and nothing written.
  std::string bytes = ReadAll(work_ + "/ferry.tar");
  std::ofstream(work_ + "/cut.tar", std::ios::binary) << bytes.substr(0, bytes.size() - 1024);
  testing::FerryctlRun cut = Run({"backup", "restore", "--in=cut.tar", "--config_dir=other/etc",
                                  "--pki_dir=other/pki", "--state_dir=other/state"});
  EXPECT_EQ(cut.exit_code, 1);
  EXPECT_THAT(cut.err, HasSubstr("truncated"));
  EXPECT_NE(access((work_ + "/other").c_str(), F_OK), 0);
}

}  // namespace
}  // namespace ferry::cli
