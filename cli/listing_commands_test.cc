// Flag handling of `ferryctl leases` and `ferryctl sessions` (their server
// side is exercised by tests/ferryctl_admin_test.cc).
#include <sstream>
#include <string>
#include <vector>

#include "cli/command_table.h"
#include "cli/leases_command.h"
#include "cli/sessions_command.h"
#include "gtest/gtest.h"

namespace ferry::cli {
namespace {

struct Case {
  std::string name;
  CommandHandler run;
  std::vector<std::string> args;
  int code;
  std::string in_out;  // expected in stdout
  std::string in_err;  // expected in stderr
};

class ListingCommandsTest : public ::testing::TestWithParam<Case> {};

TEST_P(ListingCommandsTest, ExitCodeAndMessage) {
  const Case& c = GetParam();
  std::ostringstream out, err;
  EXPECT_EQ(c.run(c.args, out, err), c.code) << err.str();
  EXPECT_NE(out.str().find(c.in_out), std::string::npos) << out.str();
  EXPECT_NE(err.str().find(c.in_err), std::string::npos) << err.str();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ListingCommandsTest,
    ::testing::Values(
        Case{"LeasesHelp", &RunLeasesCommand, {"--help"}, kExitOk, "Usage: ferryctl leases", ""},
        Case{"SessionsHelp", &RunSessionsCommand, {"-h"}, kExitOk, "Usage: ferryctl sessions", ""},
        Case{"LeasesUnknownFlag",
             &RunLeasesCommand,
             {"--vip=1"},
             kExitUsage,
             "",
             "ferryctl leases: unknown flag --vip"},
        Case{"SessionsBadOutput",
             &RunSessionsCommand,
             {"--output=csv"},
             kExitUsage,
             "",
             "ferryctl sessions: --output must be table or json, got 'csv'"},
        Case{"SessionsPositional",
             &RunSessionsCommand,
             {"acme"},
             kExitUsage,
             "",
             "unexpected argument 'acme'"},
        Case{"LeasesNoCertificates",
             &RunLeasesCommand,
             {"--intermediate=127.0.0.1:1"},
             kExitUsage,
             "",
             "--ca_cert is not set (nor FERRY_CA_CERT)"}),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

}  // namespace
}  // namespace ferry::cli
