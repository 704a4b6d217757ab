// End-to-end test of the ferryctl binary: runs it as a child process in a
// temporary working directory, as an operator would.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/testing/ferryctl_process.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace ferry::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

using RunResult = cli::testing::FerryctlRun;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class FerryctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* srcdir = std::getenv("TEST_SRCDIR");
    const char* workspace = std::getenv("TEST_WORKSPACE");
    const char* tmp = std::getenv("TEST_TMPDIR");
    ASSERT_NE(srcdir, nullptr);
    ASSERT_NE(workspace, nullptr);
    ASSERT_NE(tmp, nullptr);
    binary_ = absl::StrCat(srcdir, "/", workspace, "/cli/ferryctl");
    ASSERT_EQ(access(binary_.c_str(), X_OK), 0) << binary_;
    work_ = absl::StrCat(tmp, "/", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_EQ(mkdir(work_.c_str(), 0755), 0);
  }

  // Runs `ferryctl args...` with the working directory work_.
  RunResult Run(const std::vector<std::string>& args) {
    RunResult result = cli::testing::RunFerryctl(binary_, work_, args);
    EXPECT_NE(result.exit_code, -1) << "ferryctl crashed";
    return result;
  }

  // `pki list --output=json`, parsed; fails the test on bad JSON.
  google::protobuf::Struct ListJson() {
    RunResult listed = Run({"pki", "list", "--output=json"});
    EXPECT_EQ(listed.exit_code, 0) << listed.err;
    google::protobuf::Struct json;
    auto status = google::protobuf::util::JsonStringToMessage(listed.out, &json);
    EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << listed.out;
    return json;
  }

  static const google::protobuf::Struct* FindCert(const google::protobuf::Struct& json,
                                                  const std::string& file) {
    for (const auto& value : json.fields().at("certificates").list_value().values()) {
      if (value.struct_value().fields().at("file").string_value() == file) {
        return &value.struct_value();
      }
    }
    return nullptr;
  }

  std::string binary_;
  std::string work_;
};

TEST_F(FerryctlTest, TopLevelDispatch) {
  RunResult none = Run({});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_THAT(none.err, HasSubstr("Usage: ferryctl <command>"));

  RunResult unknown = Run({"frobnicate"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("unknown command 'frobnicate'"));
  EXPECT_THAT(unknown.err, HasSubstr("pki"));
  EXPECT_EQ(unknown.out, "");

  RunResult help = Run({"help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("pki"));
  EXPECT_THAT(help.out, HasSubstr("version"));

  RunResult version = Run({"version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_THAT(version.out, HasSubstr("ferryctl "));
  EXPECT_THAT(version.out, HasSubstr("OpenSSL"));

  RunResult pki_help = Run({"help", "pki"});
  EXPECT_EQ(pki_help.exit_code, 0);
  EXPECT_THAT(pki_help.out, HasSubstr("rotate"));
}

TEST_F(FerryctlTest, PkiInitIssueListRotate) {
  RunResult init = Run({"pki", "init"});
  ASSERT_EQ(init.exit_code, 0) << init.err;
  EXPECT_THAT(init.out, HasSubstr(".ferry/pki/ca.crt"));
  struct stat st;
  ASSERT_EQ(stat((work_ + "/.ferry/pki/ca.key").c_str(), &st), 0) << "default dir is .ferry/pki";
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  RunResult again = Run({"pki", "init"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_THAT(again.err, HasSubstr("already exists"));
  EXPECT_EQ(again.out, "");

  RunResult issue = Run({"pki", "issue", "--tenant", "acme", "--role=connector", "--name", "web",
                         "--dns", "web.local,localhost", "--ip=127.0.0.1", "--days", "30"});
  ASSERT_EQ(issue.exit_code, 0) << issue.err;
  EXPECT_THAT(issue.out, HasSubstr("spiffe://ferry.local/tenant/acme/connector/web"));
  std::string old_key = ReadAll(work_ + "/.ferry/pki/connector-acme-web.key");
  ASSERT_FALSE(old_key.empty());

  RunResult server = Run({"pki", "issue", "--tenant=system", "--role=intermediate", "--name=im1"});
  ASSERT_EQ(server.exit_code, 0) << server.err;

  google::protobuf::Struct json = ListJson();
  EXPECT_EQ(json.fields().at("dir").string_value(), ".ferry/pki");
  EXPECT_EQ(json.fields().at("certificates").list_value().values_size(), 3);
  const google::protobuf::Struct* web = FindCert(json, "connector-acme-web.crt");
  ASSERT_NE(web, nullptr);
  EXPECT_EQ(web->fields().at("uri_san").string_value(),
            "spiffe://ferry.local/tenant/acme/connector/web");
  EXPECT_EQ(web->fields().at("subject_cn").string_value(), "web");
  EXPECT_TRUE(web->fields().at("verifies").bool_value());
  EXPECT_EQ(web->fields().at("days_left").number_value(), 29);
  ASSERT_EQ(web->fields().at("dns_sans").list_value().values_size(), 2);
  EXPECT_EQ(web->fields().at("dns_sans").list_value().values(0).string_value(), "web.local");
  EXPECT_EQ(web->fields().at("ip_sans").list_value().values(0).string_value(), "127.0.0.1");
  std::string old_serial = web->fields().at("serial").string_value();
  const google::protobuf::Struct* ca = FindCert(json, "ca.crt");
  ASSERT_NE(ca, nullptr);
  EXPECT_TRUE(ca->fields().at("is_ca").bool_value());

  RunResult rotate = Run({"pki", "rotate", "connector-acme-web"});
  ASSERT_EQ(rotate.exit_code, 0) << rotate.err;
  EXPECT_NE(ReadAll(work_ + "/.ferry/pki/connector-acme-web.key"), old_key);
  EXPECT_EQ(ReadAll(work_ + "/.ferry/pki/connector-acme-web.key.prev"), old_key);

  json = ListJson();
  web = FindCert(json, "connector-acme-web.crt");
  ASSERT_NE(web, nullptr);
  EXPECT_EQ(web->fields().at("uri_san").string_value(),
            "spiffe://ferry.local/tenant/acme/connector/web");
  EXPECT_EQ(web->fields().at("dns_sans").list_value().values_size(), 2);
  EXPECT_NE(web->fields().at("serial").string_value(), old_serial);
  EXPECT_TRUE(web->fields().at("verifies").bool_value());
  EXPECT_EQ(web->fields().at("days_left").number_value(), 29) << "same lifetime after rotation";

  RunResult table = Run({"pki", "list"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("IDENTITY"));
  EXPECT_THAT(table.out, HasSubstr("intermediate-system-im1.crt"));
  EXPECT_THAT(table.out, Not(HasSubstr(".prev")));
}

TEST_F(FerryctlTest, PkiHonoursDirAndTrustDomain) {
  RunResult init = Run({"pki", "init", "--dir", "custom/pki", "--trust_domain=example.org"});
  ASSERT_EQ(init.exit_code, 0) << init.err;
  RunResult issue =
      Run({"pki", "issue", "--dir=custom/pki", "--tenant=t1", "--role=agent", "--name=laptop"});
  ASSERT_EQ(issue.exit_code, 0) << issue.err;
  EXPECT_THAT(issue.out, HasSubstr("spiffe://example.org/tenant/t1/agent/laptop"));
  EXPECT_EQ(access((work_ + "/custom/pki/agent-t1-laptop.crt").c_str(), F_OK), 0);
  EXPECT_NE(access((work_ + "/.ferry").c_str(), F_OK), 0) << "default dir untouched";
}

TEST_F(FerryctlTest, PkiUsageErrorsExit2AndFailuresExit1) {
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string err;
  };
  for (const Case& c : std::vector<Case>{
           {{"pki"}, 2, "Usage: ferryctl pki"},
           {{"pki", "frob"}, 2, "unknown command 'frob'"},
           {{"pki", "init", "--bogus"}, 2, "unknown flag --bogus"},
           {{"pki", "init", "extra"}, 2, "unexpected argument 'extra'"},
           {{"pki", "issue", "--tenant=a", "--role=agent"}, 2, "missing --name"},
           {{"pki", "issue", "--tenant=A", "--role=agent", "--name=x"}, 2, "tenant name \"A\""},
           {{"pki", "issue", "--tenant=a", "--role=root", "--name=x"}, 2, "role 'root'"},
           {{"pki", "issue", "--tenant=a", "--role=agent", "--name=x", "--days=zero"},
            2,
            "wants an integer"},
           {{"pki", "list", "--output=yaml"}, 2, "--output must be table or json"},
           {{"pki", "rotate"}, 2, "exactly one FILE_STEM"},
           {{"pki", "issue", "--tenant=a", "--role=agent", "--name=x"}, 1, "pki init"},
           {{"pki", "list"}, 1, "no directory .ferry/pki; create a CA there"},
           {{"pki", "rotate", "agent-a-x"}, 1, "no certificate"},
       }) {
    RunResult r = Run(c.args);
    EXPECT_EQ(r.exit_code, c.exit_code) << c.args.back() << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.err)) << c.args.back();
    EXPECT_EQ(r.out, "") << c.args.back();
  }
}

TEST_F(FerryctlTest, EverySubcommandAnswersHelpOnStdout) {
  for (const char* sub : {"init", "issue", "list", "rotate"}) {
    RunResult r = Run({"pki", sub, "--help"});
    EXPECT_EQ(r.exit_code, 0) << sub;
    EXPECT_THAT(r.out, HasSubstr(absl::StrCat("Usage: ferryctl pki ", sub))) << sub;
    EXPECT_THAT(r.out, HasSubstr("--dir=DIR")) << sub;
    EXPECT_EQ(r.err, "") << sub;
  }
}

}  // namespace
}  // namespace ferry::cli
