#include "cli/pki_command.h"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli/dev_pki.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace ferry::cli {
namespace {

using ::testing::HasSubstr;

class PkiCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    ASSERT_NE(tmp, nullptr);
    dir_ = absl::StrCat(tmp, "/", ::testing::UnitTest::GetInstance()->current_test_info()->name());
  }

  int Run(std::vector<std::string> args) {
    out_.str("");
    err_.str("");
    args.push_back("--dir=" + dir_);
    return RunPkiCommand(args, out_, err_);
  }

  google::protobuf::Struct ParseJson() {
    google::protobuf::Struct json;
    auto status = google::protobuf::util::JsonStringToMessage(out_.str(), &json);
    EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << out_.str();
    return json;
  }

  std::string dir_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(PkiCommandTest, ListJsonStaysValidForOddValuesAndUnparseableFiles) {
  ASSERT_EQ(Run({"init"}), 0) << err_.str();
  IssueOptions odd;
  odd.tenant = "acme";
  odd.role = "agent";
  odd.name = "odd";
  odd.uri_san_override = R"(spiffe://x/"quoted"\back)";
  ASSERT_TRUE(Issue(dir_, odd).ok());
  std::ofstream(dir_ + "/broken.crt") << "garbage";

  ASSERT_EQ(Run({"list", "--output=json"}), 0) << err_.str();
  google::protobuf::Struct json = ParseJson();
  const auto& certs = json.fields().at("certificates").list_value().values();
  ASSERT_EQ(certs.size(), 3);
  const auto& odd_fields = certs[0].struct_value().fields();
  EXPECT_EQ(odd_fields.at("file").string_value(), "agent-acme-odd.crt");
  EXPECT_EQ(odd_fields.at("uri_san").string_value(), R"(spiffe://x/"quoted"\back)");
  const auto& broken = certs[1].struct_value().fields();
  EXPECT_EQ(broken.at("file").string_value(), "broken.crt");
  EXPECT_FALSE(broken.at("verifies").bool_value());
  EXPECT_TRUE(broken.at("not_after").has_null_value());
  EXPECT_THAT(broken.at("verify_error").string_value(), HasSubstr("not a PEM certificate"));
}

TEST_F(PkiCommandTest, ListJsonOfAnEmptyDirectoryHasNoCertificates) {
  ASSERT_EQ(mkdir(dir_.c_str(), 0700), 0);
  ASSERT_EQ(Run({"list", "--output", "json"}), 0) << err_.str();
  google::protobuf::Struct json = ParseJson();
  EXPECT_EQ(json.fields().at("certificates").list_value().values_size(), 0);
  EXPECT_EQ(json.fields().at("dir").string_value(), dir_);
}

TEST_F(PkiCommandTest, ListTableNamesEmptyDirectoriesAndExpiredCertificates) {
  ASSERT_EQ(mkdir(dir_.c_str(), 0700), 0);
  ASSERT_EQ(Run({"list"}), 0);
  EXPECT_THAT(out_.str(), HasSubstr("No certificates in " + dir_));

  ASSERT_EQ(Run({"init"}), 0);
  IssueOptions expired;
  expired.tenant = "acme";
  expired.role = "relay";
  expired.name = "r1";
  expired.not_before = absl::Now() - absl::Hours(72);
  expired.not_after = absl::Now() - absl::Hours(48);
  ASSERT_TRUE(Issue(dir_, expired).ok());
  ASSERT_EQ(Run({"list"}), 0) << "list reports, it does not judge";
  std::string table = out_.str();
  EXPECT_THAT(table, HasSubstr("FILE"));
  EXPECT_THAT(table, HasSubstr("relay-acme-r1.crt"));
  EXPECT_THAT(table, HasSubstr("certificate has expired"));
  EXPECT_THAT(table, HasSubstr("ok (CA)"));
}

TEST_F(PkiCommandTest, DaysFlagSetsTheValidity) {
  ASSERT_EQ(Run({"init", "--days=2"}), 0) << err_.str();
  ASSERT_EQ(Run({"issue", "--tenant=acme", "--role=admin", "--name=ops", "--days", "1"}), 0)
      << err_.str();
  absl::StatusOr<std::vector<CertInfo>> certs = List(dir_);
  ASSERT_TRUE(certs.ok());
  ASSERT_EQ(certs->size(), 2u);
  EXPECT_EQ((*certs)[0].file, "admin-acme-ops.crt");
  EXPECT_EQ((*certs)[0].days_left, 0);
  EXPECT_EQ((*certs)[1].days_left, 1);

  for (const char* days : {"--days=0", "--days=-5", "--days=36501"}) {
    EXPECT_EQ(Run({"issue", "--tenant=acme", "--role=admin", "--name=ops2", days}), 2) << days;
    EXPECT_THAT(err_.str(), HasSubstr("--days must be between 1 and 36500")) << days;
  }
}

TEST_F(PkiCommandTest, IssueForceAndRotateOutput) {
  ASSERT_EQ(Run({"init"}), 0);
  std::vector<std::string> issue = {"issue", "--tenant=acme", "--role=agent", "--name=a1"};
  ASSERT_EQ(Run(issue), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("identity     spiffe://ferry.local/tenant/acme/agent/a1"));
  EXPECT_EQ(Run(issue), 1);
  EXPECT_THAT(err_.str(), HasSubstr("pki rotate agent-acme-a1"));
  issue.push_back("--force");
  EXPECT_EQ(Run(issue), 0) << err_.str();

  ASSERT_EQ(Run({"rotate", "agent-acme-a1.crt"}), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("agent-acme-a1.key.prev"));
  EXPECT_EQ(Run({"rotate", "a", "b"}), 2);
  EXPECT_EQ(Run({"rotate", "ca"}), 2) << "rotating the CA is refused as bad input";
  EXPECT_THAT(err_.str(), HasSubstr("pki init --force"));
}

}  // namespace
}  // namespace ferry::cli
