#include "cli/services_command.h"

#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "cli/args.h"
#include "cli/command_table.h"
#include "gtest/gtest.h"

namespace ferry::cli {
namespace {

const std::vector<std::string> kMinimal = {"--name=ollama-api", "--protocol=tcp",
                                           "--backend=127.0.0.1:11434", "--connector=edge-1"};

std::vector<std::string> With(std::vector<std::string> extra) {
  std::vector<std::string> args = kMinimal;
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// `services add` with the minimal flags and `extra`.
std::vector<std::string> Add(std::vector<std::string> extra) {
  std::vector<std::string> args = {"add"};
  args.insert(args.end(), kMinimal.begin(), kMinimal.end());
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

absl::StatusOr<v1::ServiceSpec> FromArgs(const std::vector<std::string>& args) {
  absl::StatusOr<ParsedArgs> parsed = ParseArgs(args, ServiceSpecFlagSpecs());
  if (!parsed.ok()) return parsed.status();
  return ServiceSpecFromFlags(*parsed);
}

TEST(ServiceSpecFromFlagsTest, MinimalFlags) {
  absl::StatusOr<v1::ServiceSpec> spec = FromArgs(kMinimal);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name(), "ollama-api");
  EXPECT_EQ(spec->protocol(), v1::PROTOCOL_TCP);
  ASSERT_EQ(spec->backends_size(), 1);
  EXPECT_EQ(spec->backends(0).address(), "127.0.0.1:11434");
  EXPECT_EQ(spec->connector(), "edge-1");
  EXPECT_EQ(spec->tenant(), "");
  EXPECT_EQ(spec->port(), 0u);
  EXPECT_FALSE(spec->has_health_check());
  EXPECT_EQ(spec->pinned_vip(), "");
}

TEST(ServiceSpecFromFlagsTest, EveryOptionalFlag) {
  absl::StatusOr<v1::ServiceSpec> spec = FromArgs(With(
      {"--backend=127.0.0.1:2,dns://web.internal:80", "--port=8080", "--tenant=acme",
       "--health=http:/healthz", "--interval=1500ms", "--pin_vip=10.100.0.50", "--protocol=udp"}));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->protocol(), v1::PROTOCOL_UDP);  // the last --protocol wins
  ASSERT_EQ(spec->backends_size(), 3);
  EXPECT_EQ(spec->backends(1).address(), "127.0.0.1:2");
  EXPECT_EQ(spec->backends(2).address(), "dns://web.internal:80");
  EXPECT_EQ(spec->port(), 8080u);
  EXPECT_EQ(spec->tenant(), "acme");
  ASSERT_TRUE(spec->health_check().has_http());
  EXPECT_EQ(spec->health_check().http().path(), "/healthz");
  EXPECT_FALSE(spec->health_check().http().tls());
  EXPECT_EQ(spec->health_check().interval().seconds(), 1);
  EXPECT_EQ(spec->health_check().interval().nanos(), 500000000);
  EXPECT_EQ(spec->pinned_vip(), "10.100.0.50");
}

TEST(ServiceSpecFromFlagsTest, HealthKinds) {
  struct Case {
    std::string flag;
    v1::HealthCheck::KindCase kind;
  };
  const std::vector<Case> cases = {
      {"tcp", v1::HealthCheck::kTcp},           {"udp", v1::HealthCheck::kUdp},
      {"icmp", v1::HealthCheck::kIcmp},         {"grpc", v1::HealthCheck::kGrpc},
      {"grpc:ollama", v1::HealthCheck::kGrpc},  {"http", v1::HealthCheck::kHttp},
      {"https:/ready", v1::HealthCheck::kHttp},
  };
  for (const Case& c : cases) {
    absl::StatusOr<v1::ServiceSpec> spec = FromArgs(With({"--health=" + c.flag}));
    ASSERT_TRUE(spec.ok()) << c.flag << ": " << spec.status();
    EXPECT_EQ(spec->health_check().kind_case(), c.kind) << c.flag;
  }
  absl::StatusOr<v1::ServiceSpec> https = FromArgs(With({"--health=https:/ready"}));
  ASSERT_TRUE(https.ok());
  EXPECT_TRUE(https->health_check().http().tls());
  EXPECT_EQ(https->health_check().http().path(), "/ready");
  absl::StatusOr<v1::ServiceSpec> grpc = FromArgs(With({"--health=grpc:ollama"}));
  ASSERT_TRUE(grpc.ok());
  EXPECT_EQ(grpc->health_check().grpc().service(), "ollama");
}

struct BadCase {
  std::string name;
  std::vector<std::string> args;
  std::string error;
};

class ServiceSpecFromFlagsErrorTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(ServiceSpecFromFlagsErrorTest, NamesTheFlag) {
  const BadCase& c = GetParam();
  absl::StatusOr<v1::ServiceSpec> spec = FromArgs(c.args);
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(spec.status().message(), c.error)) << spec.status();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ServiceSpecFromFlagsErrorTest,
    ::testing::Values(
        BadCase{"NoName", {"--protocol=tcp", "--backend=a:1", "--connector=c"}, "missing --name"},
        BadCase{"NoProtocol", {"--name=n", "--backend=a:1", "--connector=c"}, "missing --protocol"},
        BadCase{"NoBackend", {"--name=n", "--protocol=tcp", "--connector=c"}, "missing --backend"},
        BadCase{
            "NoConnector", {"--name=n", "--protocol=tcp", "--backend=a:1"}, "missing --connector"},
        BadCase{"BadProtocol", With({"--protocol=sctp"}),
                "--protocol must be tcp, udp or icmp, got 'sctp'"},
        BadCase{"PortZero", With({"--port=0"}), "--port must be between 1 and 65535, got 0"},
        BadCase{"PortTooBig", With({"--port=70000"}), "--port must be between 1 and 65535"},
        BadCase{"PortNotANumber", With({"--port=http"}), "flag --port wants an integer"},
        BadCase{"BadHealth", With({"--health=ping"}), "--health must be tcp, http"},
        BadCase{"HealthWithStrayArgument", With({"--health=tcp:80"}), "takes no ':' argument"},
        BadCase{"HttpPathWithoutSlash", With({"--health=http:healthz"}),
                "wants a path starting with '/'"},
        BadCase{"IntervalWithoutHealth", With({"--interval=5s"}), "--interval needs --health"},
        BadCase{"BadInterval", With({"--health=tcp", "--interval=5"}),
                "--interval wants a positive duration"}),
    [](const ::testing::TestParamInfo<BadCase>& info) { return info.param.name; });

TEST(ServiceSpecFromTextTest, YamlAndJson) {
  absl::StatusOr<v1::ServiceSpec> yaml = ServiceSpecFromText(
      "name: web\nprotocol: PROTOCOL_TCP\nconnector: edge-1\nbackends:\n"
      "  - address: 127.0.0.1:8080\nhealth_check:\n  interval: 2s\n  http:\n    path: /\n",
      "web.yaml");
  ASSERT_TRUE(yaml.ok()) << yaml.status();
  EXPECT_EQ(yaml->name(), "web");
  EXPECT_EQ(yaml->protocol(), v1::PROTOCOL_TCP);
  EXPECT_EQ(yaml->connector(), "edge-1");
  ASSERT_EQ(yaml->backends_size(), 1);
  EXPECT_EQ(yaml->health_check().interval().seconds(), 2);
  EXPECT_TRUE(yaml->health_check().has_http());

  absl::StatusOr<v1::ServiceSpec> json = ServiceSpecFromText(
      R"({"name": "dns", "protocol": "PROTOCOL_UDP", "connector": "edge-1",
          "backends": [{"address": "127.0.0.1:53"}]})",
      "<stdin>");
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(json->protocol(), v1::PROTOCOL_UDP);
}

TEST(ServiceSpecFromTextTest, UnknownFieldIsRefusedWithItsPlace) {
  absl::StatusOr<v1::ServiceSpec> spec =
      ServiceSpecFromText("name: web\nprotcol: PROTOCOL_TCP\n", "web.yaml");
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(spec.status().message(), "web.yaml:2")) << spec.status();
  EXPECT_TRUE(absl::StrContains(spec.status().message(), "protcol")) << spec.status();
}

struct RunCase {
  std::string name;
  std::vector<std::string> args;
  std::string stdin_text;
  int code;
  std::string in_out;
  std::string in_err;
};

class RunServicesCommandTest : public ::testing::TestWithParam<RunCase> {};

// Every case ends before a connection is attempted.
TEST_P(RunServicesCommandTest, ExitCodeAndMessage) {
  const RunCase& c = GetParam();
  std::istringstream in(c.stdin_text);
  std::ostringstream out, err;
  EXPECT_EQ(RunServicesCommand(c.args, in, out, err), c.code) << err.str();
  EXPECT_TRUE(absl::StrContains(out.str(), c.in_out)) << out.str();
  EXPECT_TRUE(absl::StrContains(err.str(), c.in_err)) << err.str();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, RunServicesCommandTest,
    ::testing::Values(
        RunCase{"NoSubcommand", {}, "", kExitUsage, "", "Usage: ferryctl services"},
        RunCase{"Help", {"--help"}, "", kExitOk, "list", ""},
        RunCase{"UnknownSubcommand", {"edit"}, "", kExitUsage, "", "unknown subcommand 'edit'"},
        RunCase{"AddHelp", {"add", "--help"}, "", kExitOk, "--pin_vip=IP", ""},
        RunCase{"ListHelp", {"list", "--help"}, "", kExitOk, "--output=FORMAT", ""},
        RunCase{"AddMissingName", {"add", "--protocol=tcp"}, "", kExitUsage, "", "missing --name"},
        RunCase{"AddSpecAndFlags",
                {"add", "--spec=-", "--name=x"},
                "",
                kExitUsage,
                "",
                "--spec and --name do not go together"},
        RunCase{"AddBadSpecOnStdin",
                {"add", "--spec=-"},
                "name: [1, 2]\n",
                kExitUsage,
                "",
                "<stdin>:1"},
        RunCase{"AddMissingSpecFile",
                {"add", "--spec=/nonexistent/web.yaml"},
                "",
                kExitUsage,
                "",
                "/nonexistent/web.yaml"},
        RunCase{"AddUnexpectedArgument", Add({"extra"}), "", kExitUsage, "", "unexpected argument"},
        RunCase{"RmWithoutName", {"rm"}, "", kExitUsage, "", "name the service to remove"},
        RunCase{"RmTwoNames", {"rm", "a", "b"}, "", kExitUsage, "", "takes one NAME"},
        RunCase{"AddNoCertificates", Add({}), "", kExitUsage, "", "--ca_cert is not set"}),
    [](const ::testing::TestParamInfo<RunCase>& info) { return info.param.name; });

}  // namespace
}  // namespace ferry::cli
