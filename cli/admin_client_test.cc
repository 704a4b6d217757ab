#include "cli/admin_client.h"

#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "cli/args.h"
#include "cli/command_table.h"
#include "gtest/gtest.h"

namespace ferry::cli {
namespace {

EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  return [vars](absl::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end() || it->second.empty()) return std::nullopt;
    return it->second;
  };
}

struct ConnectionCase {
  std::string name;
  std::vector<std::string> args;
  std::map<std::string, std::string> env;
  // On success:
  std::string address;
  std::string ca_cert, cert, key;
  absl::Duration timeout = kDefaultRpcTimeout;
  // On failure, a substring of the message ("" for success).
  std::string error;
};

class ResolveConnectionTest : public ::testing::TestWithParam<ConnectionCase> {};

TEST_P(ResolveConnectionTest, FlagsWinOverEnvironmentAndMissingPiecesAreNamed) {
  const ConnectionCase& c = GetParam();
  absl::StatusOr<ParsedArgs> parsed = ParseArgs(c.args, ConnectionFlagSpecs());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  absl::StatusOr<AdminConnection> connection = ResolveConnection(*parsed, FakeEnv(c.env));
  if (!c.error.empty()) {
    ASSERT_FALSE(connection.ok());
    EXPECT_EQ(connection.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(connection.status().message().find(c.error), absl::string_view::npos)
        << connection.status();
    return;
  }
  ASSERT_TRUE(connection.ok()) << connection.status();
  EXPECT_EQ(connection->address, c.address);
  EXPECT_EQ(connection->tls.ca_cert, c.ca_cert);
  EXPECT_EQ(connection->tls.cert, c.cert);
  EXPECT_EQ(connection->tls.key, c.key);
  EXPECT_EQ(connection->timeout, c.timeout);
}

const std::vector<std::string> kAllFlags = {"--ca_cert=f.ca", "--cert=f.crt", "--key=f.key"};
const std::map<std::string, std::string> kAllEnv = {
    {"FERRY_CA_CERT", "e.ca"}, {"FERRY_CERT", "e.crt"}, {"FERRY_KEY", "e.key"}};

INSTANTIATE_TEST_SUITE_P(
    Cases, ResolveConnectionTest,
    ::testing::Values(ConnectionCase{"FlagsOnlyDefaultAddress",
                                     kAllFlags,
                                     {},
                                     "127.0.0.1:7443",
                                     "f.ca",
                                     "f.crt",
                                     "f.key",
                                     kDefaultRpcTimeout,
                                     ""},
                      ConnectionCase{"EnvOnly",
                                     {},
                                     {{"FERRY_CA_CERT", "e.ca"},
                                      {"FERRY_CERT", "e.crt"},
                                      {"FERRY_KEY", "e.key"},
                                      {"FERRY_INTERMEDIATE", "ctl.example:9000"}},
                                     "ctl.example:9000",
                                     "e.ca",
                                     "e.crt",
                                     "e.key",
                                     kDefaultRpcTimeout,
                                     ""},
                      ConnectionCase{"FlagBeatsEnv",
                                     {"--cert=f.crt", "--intermediate=10.0.0.1:7443"},
                                     {{"FERRY_CA_CERT", "e.ca"},
                                      {"FERRY_CERT", "e.crt"},
                                      {"FERRY_KEY", "e.key"},
                                      {"FERRY_INTERMEDIATE", "ctl.example:9000"}},
                                     "10.0.0.1:7443",
                                     "e.ca",
                                     "f.crt",
                                     "e.key",
                                     kDefaultRpcTimeout,
                                     ""},
                      ConnectionCase{"Timeout",
                                     {"--timeout=1500ms"},
                                     kAllEnv,
                                     "127.0.0.1:7443",
                                     "e.ca",
                                     "e.crt",
                                     "e.key",
                                     absl::Milliseconds(1500),
                                     ""},
                      ConnectionCase{"MissingCaCert",
                                     {"--cert=a", "--key=b"},
                                     {},
                                     "",
                                     "",
                                     "",
                                     "",
                                     {},
                                     "--ca_cert is not set (nor FERRY_CA_CERT)"},
                      ConnectionCase{"MissingCert",
                                     {"--ca_cert=a", "--key=b"},
                                     {},
                                     "",
                                     "",
                                     "",
                                     "",
                                     {},
                                     "--cert is not set (nor FERRY_CERT)"},
                      ConnectionCase{"MissingKey",
                                     {"--ca_cert=a", "--cert=b"},
                                     {},
                                     "",
                                     "",
                                     "",
                                     "",
                                     {},
                                     "--key is not set (nor FERRY_KEY)"},
                      ConnectionCase{"EmptyAddress",
                                     {"--intermediate="},
                                     kAllEnv,
                                     "",
                                     "",
                                     "",
                                     "",
                                     {},
                                     "--intermediate is empty"},
                      ConnectionCase{"BadTimeout",
                                     {"--timeout=soon"},
                                     kAllEnv,
                                     "",
                                     "",
                                     "",
                                     "",
                                     {},
                                     "--timeout wants a positive duration"},
                      ConnectionCase{"ZeroTimeout",
                                     {"--timeout=0s"},
                                     kAllEnv,
                                     "",
                                     "",
                                     "",
                                     "",
                                     {},
                                     "--timeout wants a positive duration"}),
    [](const ::testing::TestParamInfo<ConnectionCase>& info) { return info.param.name; });

struct OutputCase {
  std::vector<std::string> args;
  bool ok;
  OutputFormat format;
};

TEST(ParseOutputFormatTest, AcceptsTableAndJsonOnly) {
  const std::vector<OutputCase> cases = {
      {{}, true, OutputFormat::kTable},
      {{"--output=table"}, true, OutputFormat::kTable},
      {{"--output=json"}, true, OutputFormat::kJson},
      {{"--output=yaml"}, false, OutputFormat::kTable},
      {{"--output="}, false, OutputFormat::kTable},
  };
  for (const OutputCase& c : cases) {
    absl::StatusOr<ParsedArgs> parsed = ParseArgs(c.args, {OutputFlagSpec()});
    ASSERT_TRUE(parsed.ok());
    absl::StatusOr<OutputFormat> format = ParseOutputFormat(*parsed);
    ASSERT_EQ(format.ok(), c.ok) << (c.args.empty() ? "(none)" : c.args[0]);
    if (c.ok) {
      EXPECT_EQ(*format, c.format);
    }
  }
}

TEST(ReportRpcErrorTest, UnreachableCodesGetTheirOwnExitCodeAndNameTheAddress) {
  AdminConnection connection;
  connection.address = "127.0.0.1:1";
  struct Case {
    absl::Status status;
    int code;
    std::string want;
  };
  const std::vector<Case> cases = {
      {absl::UnavailableError("failed to connect to all addresses"), kExitUnreachable,
       "could not reach the Intermediate at 127.0.0.1:1: UNAVAILABLE: failed to connect"},
      {absl::DeadlineExceededError("Deadline Exceeded"), kExitUnreachable,
       "could not reach the Intermediate at 127.0.0.1:1: DEADLINE_EXCEEDED"},
      {absl::NotFoundError("tenant \"acme\" has no service \"x\""), kExitFailure,
       "ferryctl t: NOT_FOUND: tenant \"acme\" has no service \"x\""},
      {absl::PermissionDeniedError("no"), kExitFailure, "ferryctl t: PERMISSION_DENIED: no"},
  };
  for (const Case& c : cases) {
    std::ostringstream err;
    EXPECT_EQ(ReportRpcError("ferryctl t", connection, c.status, err), c.code);
    EXPECT_NE(err.str().find(c.want), std::string::npos) << err.str();
  }
}

TEST(RunListingCommandTest, RejectsBadInputBeforeConnecting) {
  int calls = 0;
  ListingFn list = [&calls](AdminClient&, const std::string&,
                            OutputFormat) -> absl::StatusOr<std::string> {
    ++calls;
    return std::string("listed\n");
  };
  struct Case {
    std::vector<std::string> args;
    int code;
    std::string in_err;
  };
  const std::vector<Case> cases = {
      {{"--nope"}, kExitUsage, "unknown flag --nope"},
      {{"extra"}, kExitUsage, "unexpected argument 'extra'"},
      {{"--output=xml"}, kExitUsage, "--output must be table or json"},
      {{"--ca_cert=a", "--cert=b"}, kExitUsage, "--key is not set"},
      {{"--ca_cert=/nonexistent/ca", "--cert=/nonexistent/c", "--key=/nonexistent/k"},
       kExitFailure,
       "/nonexistent/ca"},
  };
  for (const Case& c : cases) {
    std::ostringstream out, err;
    EXPECT_EQ(RunListingCommand("ferryctl x", "Usage: ferryctl x\n", c.args, list, out, err),
              c.code)
        << c.args[0];
    EXPECT_NE(err.str().find(c.in_err), std::string::npos) << err.str();
  }
  EXPECT_EQ(calls, 0);

  std::ostringstream out, err;
  EXPECT_EQ(RunListingCommand("ferryctl x", "Usage: ferryctl x\n", {"--help"}, list, out, err),
            kExitOk);
  EXPECT_NE(out.str().find("--intermediate=HOST:PORT"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("--tenant=TENANT"), std::string::npos) << out.str();
}

}  // namespace
}  // namespace ferry::cli
