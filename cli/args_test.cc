#include "cli/args.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ferry::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Kind = FlagSpec::Kind;

const std::vector<FlagSpec>& Specs() {
  static const auto* specs = new std::vector<FlagSpec>{
      {"dir", Kind::kString, "DIR", "where"},
      {"dns", Kind::kString, "NAMES", "names"},
      {"days", Kind::kString, "N", "days"},
      {"force", Kind::kBool, "", "overwrite"},
  };
  return *specs;
}

TEST(ParseArgsTest, EqualsAndSpaceFormsBothSetTheValue) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--dir=/tmp/x"},
           {"--dir", "/tmp/x"},
       }) {
    absl::StatusOr<ParsedArgs> parsed = ParseArgs(args, Specs());
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(parsed->Get("dir"), "/tmp/x");
    EXPECT_TRUE(parsed->positional().empty());
  }
}

TEST(ParseArgsTest, EmptyValueAfterEqualsIsKept) {
  absl::StatusOr<ParsedArgs> parsed = ParseArgs({"--dir="}, Specs());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed->Has("dir"));
  EXPECT_EQ(parsed->Get("dir"), "");
}

TEST(ParseArgsTest, BoolFlagForms) {
  struct Case {
    std::vector<std::string> args;
    bool has;
    bool value;
  };
  for (const Case& c : std::vector<Case>{
           {{}, false, false},
           {{"--force"}, true, true},
           {{"--force=true"}, true, true},
           {{"--force=false"}, true, false},
           {{"--force", "--force=false"}, true, false},
       }) {
    absl::StatusOr<ParsedArgs> parsed = ParseArgs(c.args, Specs());
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(parsed->Has("force"), c.has);
    EXPECT_EQ(parsed->GetBool("force"), c.value);
  }
}

TEST(ParseArgsTest, BoolFlagDoesNotSwallowTheNextArgument) {
  absl::StatusOr<ParsedArgs> parsed = ParseArgs({"--force", "stem"}, Specs());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed->GetBool("force"));
  EXPECT_THAT(parsed->positional(), ElementsAre("stem"));
}

TEST(ParseArgsTest, PositionalsKeepOrderAroundFlags) {
  absl::StatusOr<ParsedArgs> parsed =
      ParseArgs({"a", "--dir", "d", "b", "-", "--", "--force", "c"}, Specs());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(parsed->positional(), ElementsAre("a", "b", "-", "--force", "c"));
  EXPECT_FALSE(parsed->Has("force"));
  EXPECT_EQ(parsed->Get("dir"), "d");
}

TEST(ParseArgsTest, RepeatedFlagLastWinsAndListCollectsAll) {
  absl::StatusOr<ParsedArgs> parsed =
      ParseArgs({"--dns", "a,b", "--dns=c", "--dns=,", "--dir=1", "--dir=2"}, Specs());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(parsed->GetList("dns"), ElementsAre("a", "b", "c"));
  EXPECT_EQ(parsed->Get("dir"), "2");
  EXPECT_TRUE(parsed->GetList("dir").size() == 2);
}

TEST(ParseArgsTest, AbsentFlags) {
  absl::StatusOr<ParsedArgs> parsed = ParseArgs({}, Specs());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_FALSE(parsed->Has("dir"));
  EXPECT_EQ(parsed->Get("dir"), std::nullopt);
  EXPECT_EQ(parsed->GetOr("dir", ".ferry/pki"), ".ferry/pki");
  EXPECT_TRUE(parsed->GetList("dns").empty());
  absl::StatusOr<std::optional<int64_t>> days = parsed->GetInt("days");
  ASSERT_TRUE(days.ok());
  EXPECT_EQ(*days, std::nullopt);
}

TEST(ParseArgsTest, GetIntParsesAndRejects) {
  absl::StatusOr<ParsedArgs> good = ParseArgs({"--days=-3"}, Specs());
  ASSERT_TRUE(good.ok()) << good.status();
  absl::StatusOr<std::optional<int64_t>> days = good->GetInt("days");
  ASSERT_TRUE(days.ok());
  EXPECT_EQ(*days, -3);

  absl::StatusOr<ParsedArgs> bad = ParseArgs({"--days", "ten"}, Specs());
  ASSERT_TRUE(bad.ok()) << bad.status();
  absl::StatusOr<std::optional<int64_t>> not_int = bad->GetInt("days");
  EXPECT_EQ(not_int.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(not_int.status().message(), HasSubstr("--days"));
  EXPECT_THAT(not_int.status().message(), HasSubstr("ten"));
}

TEST(ParseArgsTest, HelpIsAlwaysAccepted) {
  for (const char* help : {"--help", "-h"}) {
    absl::StatusOr<ParsedArgs> parsed = ParseArgs({"x", help}, Specs());
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_TRUE(parsed->help_requested());
  }
  absl::StatusOr<ParsedArgs> none = ParseArgs({"x"}, Specs());
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->help_requested());
}

TEST(ParseArgsTest, ErrorsNameTheProblem) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {{"--x"}, "unknown flag --x"},
           {{"--x=1"}, "unknown flag --x"},
           {{"-x"}, "unknown flag -x"},
           {{"--dir"}, "flag --dir needs a value"},
           {{"--dir", "--force"}, "flag --dir needs a value"},
           {{"--force=yes"}, "flag --force takes no value other than true or false"},
       }) {
    absl::StatusOr<ParsedArgs> parsed = ParseArgs(c.args, Specs());
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(parsed.status().message(), HasSubstr(c.message));
  }
}

TEST(FormatFlagHelpTest, AlignsNamesAndShowsValueNames) {
  std::string help = FormatFlagHelp({{"dir", Kind::kString, "DIR", "where it lives"},
                                     {"force", Kind::kBool, "", "overwrite"},
                                     {"x", Kind::kString, "", "plain"}});
  EXPECT_EQ(help,
            "  --dir=DIR  where it lives\n"
            "  --force    overwrite\n"
            "  --x=VALUE  plain\n");
}

}  // namespace
}  // namespace ferry::cli
