#include "cli/status_command.h"

#include <sstream>
#include <string>
#include <vector>

#include "cli/command_table.h"
#include "gtest/gtest.h"

namespace ferry::cli {
namespace {

struct NormalizeCase {
  std::vector<std::string> in;
  std::vector<std::string> want;
};

TEST(NormalizeWatchFlagTest, BareWatchGetsTheDefaultInterval) {
  const std::vector<NormalizeCase> cases = {
      {{}, {}},
      {{"--watch"}, {"--watch=2s"}},
      {{"--watch", "--output=json"}, {"--watch=2s", "--output=json"}},
      {{"--watch", "5s"}, {"--watch", "5s"}},  // "--watch 5s": the parser takes the value
      {{"--watch=1s"}, {"--watch=1s"}},
      {{"--watch", "acme"}, {"--watch=2s", "acme"}},  // not a duration: left positional
      {{"--", "--watch"}, {"--", "--watch"}},
  };
  for (const NormalizeCase& c : cases) EXPECT_EQ(NormalizeWatchFlag(c.in), c.want);
}

struct UsageCase {
  std::string name;
  std::vector<std::string> args;
  int code;
  std::string in_out;
  std::string in_err;
};

class StatusUsageTest : public ::testing::TestWithParam<UsageCase> {};

// Every case is refused (or answered) before any connection is attempted.
TEST_P(StatusUsageTest, ExitCodeAndMessage) {
  const UsageCase& c = GetParam();
  std::ostringstream out, err;
  EXPECT_EQ(RunStatusCommand(c.args, out, err), c.code) << err.str();
  EXPECT_NE(out.str().find(c.in_out), std::string::npos) << out.str();
  EXPECT_NE(err.str().find(c.in_err), std::string::npos) << err.str();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, StatusUsageTest,
    ::testing::Values(
        UsageCase{"Help", {"--help"}, kExitOk, "--watch=INTERVAL", ""},
        UsageCase{"UnknownFlag", {"--bogus"}, kExitUsage, "", "unknown flag --bogus"},
        UsageCase{"Positional", {"now"}, kExitUsage, "", "unexpected argument 'now'"},
        UsageCase{"BadInterval",
                  {"--watch=often"},
                  kExitUsage,
                  "",
                  "--watch wants an interval of at least 100ms"},
        UsageCase{"TooShortInterval",
                  {"--watch=10ms"},
                  kExitUsage,
                  "",
                  "--watch wants an interval of at least 100ms"},
        UsageCase{"CountWithoutWatch",
                  {"--watch_count=2"},
                  kExitUsage,
                  "",
                  "--watch_count needs --watch"},
        UsageCase{"ZeroCount",
                  {"--watch", "--watch_count=0"},
                  kExitUsage,
                  "",
                  "--watch_count must be at least 1"},
        UsageCase{"CountNotANumber",
                  {"--watch", "--watch_count=x"},
                  kExitUsage,
                  "",
                  "flag --watch_count wants an integer"},
        UsageCase{"BadOutput", {"--output=wide"}, kExitUsage, "", "--output must be table or json"},
        UsageCase{"NoCertificates", {"--watch"}, kExitUsage, "", "--ca_cert is not set"}),
    [](const ::testing::TestParamInfo<UsageCase>& info) { return info.param.name; });

}  // namespace
}  // namespace ferry::cli
