// ferryctl's admin-API commands (status, services, leases, sessions) against
// a real fabric: the real //cli:ferryctl binary, run as a child process with
// an admin certificate of tenant acme, talking to a real ferry-intermediate
// with connector acme/edge-1 (serving "echo") and a relay (tests/harness/fabric.h).
//
// One fabric serves the whole suite (starting one takes seconds); every test
// leaves it as it found it.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/testing/ferryctl_process.h"
#include "ferry/v1/sessions.grpc.pb.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/harness/channels.h"
#include "tests/harness/dev_pki_fixture.h"
#include "tests/harness/fabric.h"
#include "tests/harness/ferry_process.h"

namespace ferry {
namespace {

using ::ferry::harness::Fabric;
using ::ferry::harness::FabricService;

using CliRun = cli::testing::FerryctlRun;

// Parses JSON into a Struct (an object) or fails the test.
google::protobuf::Struct ParseJsonObject(const std::string& json) {
  google::protobuf::Struct parsed;
  auto status = google::protobuf::util::JsonStringToMessage(json, &parsed);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << json;
  return parsed;
}

// "127.0.0.1:<port>" of a port nothing listens on (bound, then closed).
std::string ClosedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(fd);
  return absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));
}

class FerryctlAdminTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<harness::DevPki*> pki = harness::SharedDevPki();
    ASSERT_TRUE(pki.ok()) << pki.status();
    harness::FabricOptions options;
    options.connectors.push_back(
        harness::ConnectorSpec("acme", "edge-1", {EchoService()}, /*workers=*/1));
    absl::StatusOr<std::unique_ptr<Fabric>> fabric = Fabric::Start(**pki, std::move(options));
    ASSERT_TRUE(fabric.ok()) << fabric.status();
    fabric_ = fabric->release();
    absl::StatusOr<TlsFiles> admin = fabric_->Tenant("acme").Admin("ops");
    ASSERT_TRUE(admin.ok()) << admin.status();
    admin_ = new TlsFiles(*admin);
    absl::StatusOr<std::string> binary = harness::RunfilesPath("cli/ferryctl");
    ASSERT_TRUE(binary.ok()) << binary.status();
    binary_ = new std::string(*binary);
  }

  static void TearDownTestSuite() {
    delete fabric_;  // stops its processes
    fabric_ = nullptr;
    delete admin_;
    delete binary_;
  }

  void SetUp() override {
    ASSERT_NE(fabric_, nullptr) << "the fabric did not start";
    absl::StatusOr<std::string> dir = harness::MakeTempDir("ferryctl");
    ASSERT_TRUE(dir.ok()) << dir.status();
    work_ = *dir;
  }

  static FabricService EchoService() {
    // No health check: the backend counts as healthy; nothing needs to listen.
    return FabricService("echo", v1::PROTOCOL_UDP, {"127.0.0.1:9"}, 7301);
  }

  // The connection flags of the acme admin.
  static std::vector<std::string> AdminFlags() {
    return {"--intermediate=" + fabric_->intermediate().grpc_address(),
            "--ca_cert=" + admin_->ca_cert, "--cert=" + admin_->cert, "--key=" + admin_->key};
  }

  // `ferryctl <command...> <AdminFlags...> <extra...>`.
  CliRun Admin(std::vector<std::string> command, const std::vector<std::string>& extra = {}) {
    for (const std::string& flag : AdminFlags()) command.push_back(flag);
    command.insert(command.end(), extra.begin(), extra.end());
    return Ferryctl(command);
  }

  // Runs ferryctl with `args`, FERRY_* from `env` only (others cleared).
  CliRun Ferryctl(const std::vector<std::string>& args,
                  const std::vector<std::pair<std::string, std::string>>& env = {}) {
    cli::testing::FerryctlEnv vars;
    vars.unset = {"FERRY_INTERMEDIATE", "FERRY_CA_CERT", "FERRY_CERT", "FERRY_KEY"};
    vars.set = env;
    return cli::testing::RunFerryctl(*binary_, work_, args, vars);
  }

  static Fabric* fabric_;
  static TlsFiles* admin_;
  static std::string* binary_;
  std::string work_;
};

Fabric* FerryctlAdminTest::fabric_ = nullptr;
TlsFiles* FerryctlAdminTest::admin_ = nullptr;
std::string* FerryctlAdminTest::binary_ = nullptr;

std::string Describe(const CliRun& run) {
  return absl::StrCat("exit ", run.exit_code, "\n--- stdout\n", run.out, "--- stderr\n", run.err);
}

TEST_F(FerryctlAdminTest, StatusShowsTheFabricAsTableAndJson) {
  CliRun table = Admin({"status"});
  ASSERT_EQ(table.exit_code, 0) << Describe(table);
  EXPECT_TRUE(absl::StrContains(table.out, "Intermediate  version ")) << table.out;
  EXPECT_TRUE(absl::StrContains(table.out, "trust domain ferry.local")) << table.out;
  EXPECT_TRUE(absl::StrContains(table.out, "CONNECTORS (1)")) << table.out;
  EXPECT_TRUE(absl::StrContains(table.out, "acme    edge-1")) << table.out;
  EXPECT_TRUE(absl::StrContains(table.out, "RELAYS (1)")) << table.out;
  EXPECT_TRUE(absl::StrContains(table.out, "relay-1")) << table.out;
  EXPECT_TRUE(absl::StrContains(table.out, "SERVICES (1)")) << table.out;
  EXPECT_TRUE(absl::StrContains(table.out, "127.0.0.1:9 (")) << table.out;
  EXPECT_FALSE(absl::StrContains(table.out, "CONFIG ERROR")) << table.out;

  CliRun json = Admin({"status", "--output=json"});
  ASSERT_EQ(json.exit_code, 0) << Describe(json);
  google::protobuf::Struct parsed = ParseJsonObject(json.out);
  ASSERT_EQ(parsed.fields().size(), 3u) << json.out;
  const auto& status = parsed.fields().at("status").struct_value().fields();
  EXPECT_EQ(status.at("trustDomain").string_value(), "ferry.local");
  EXPECT_EQ(status.at("connectors").list_value().values_size(), 1);
  const auto& services = parsed.fields().at("services").list_value();
  ASSERT_EQ(services.values_size(), 1) << json.out;
  EXPECT_EQ(services.values(0).struct_value().fields().at("origin").string_value(), "config");
  EXPECT_TRUE(parsed.fields().at("sessions").has_list_value()) << json.out;
}

// A refused reload of edge-1's config shows as a CONFIG ERROR in both forms;
// fixing the file clears it.
TEST_F(FerryctlAdminTest, StatusShowsAConnectorsConfigError) {
  ASSERT_TRUE(
      fabric_
          ->WriteConnectorConfigText(
              "edge-1", absl::StrCat("intermediates: [\"", fabric_->intermediate().grpc_address(),
                                     "\"]\nservices:\n  - name: echo\n    protocol: PROTOCOL_UDP\n"
                                     "    port: 70000\n    backends:\n"
                                     "      - address: \"127.0.0.1:9\"\n"))
          .ok());
  std::string config_error;
  CliRun json;
  for (absl::Time deadline = absl::Now() + absl::Seconds(15);
       config_error.empty() && absl::Now() < deadline; absl::SleepFor(absl::Milliseconds(200))) {
    json = Admin({"status", "--output=json"});
    ASSERT_EQ(json.exit_code, 0) << Describe(json);
    google::protobuf::Struct parsed = ParseJsonObject(json.out);
    for (const auto& connector : parsed.fields()
                                     .at("status")
                                     .struct_value()
                                     .fields()
                                     .at("connectors")
                                     .list_value()
                                     .values()) {
      auto it = connector.struct_value().fields().find("configError");
      if (it != connector.struct_value().fields().end()) config_error = it->second.string_value();
    }
  }
  EXPECT_TRUE(absl::StrContains(config_error, "services[0].port")) << json.out;
  EXPECT_TRUE(absl::StrContains(json.out, "configErrorAt")) << json.out;

  CliRun table = Admin({"status"});
  ASSERT_EQ(table.exit_code, 0) << Describe(table);
  EXPECT_TRUE(absl::StartsWith(table.out, "!! 1 connector(s) with a CONFIG ERROR")) << table.out;
  EXPECT_TRUE(absl::StrContains(table.out, "CONFIG ERROR  connector acme/edge-1 since "))
      << table.out;
  EXPECT_TRUE(absl::StrContains(table.out, "services[0].port")) << table.out;

  // Fixed: the error goes away.
  ASSERT_TRUE(fabric_->RewriteConnectorServices("edge-1", {EchoService()}).ok());
  bool cleared = false;
  for (absl::Time deadline = absl::Now() + absl::Seconds(15); !cleared && absl::Now() < deadline;
       absl::SleepFor(absl::Milliseconds(200))) {
    table = Admin({"status"});
    cleared = table.exit_code == 0 && !absl::StrContains(table.out, "CONFIG ERROR");
  }
  EXPECT_TRUE(cleared) << Describe(table);
}

TEST_F(FerryctlAdminTest, StatusWatchRedrawsTheGivenNumberOfFrames) {
  CliRun run = Admin({"status", "--watch=200ms", "--watch_count=3"});
  ASSERT_EQ(run.exit_code, 0) << Describe(run);
  size_t frames = 0;
  for (size_t at = run.out.find("\033[H\033[2J"); at != std::string::npos;
       at = run.out.find("\033[H\033[2J", at + 1)) {
    ++frames;
  }
  EXPECT_EQ(frames, 3u) << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, "Every 200ms: ferryctl status")) << run.out;
}

TEST_F(FerryctlAdminTest, ServicesAddListRemoveRoundTrip) {
  CliRun add = Admin({"services", "add", "--name=web", "--protocol=tcp", "--backend=127.0.0.1:8080",
                      "--connector=edge-1", "--port=8080", "--health=tcp", "--interval=2s"});
  ASSERT_EQ(add.exit_code, 0) << Describe(add);
  EXPECT_TRUE(absl::StrContains(add.out, "Registered service web (tenant acme)")) << add.out;
  EXPECT_TRUE(absl::StrContains(add.out, "vip        10.")) << add.out;
  EXPECT_TRUE(absl::StrContains(add.out, "dns name   web.acme.")) << add.out;

  CliRun again = Admin({"services", "add", "--name=web", "--protocol=tcp",
                        "--backend=127.0.0.1:8080", "--connector=edge-1"});
  EXPECT_EQ(again.exit_code, 1) << Describe(again);
  EXPECT_TRUE(absl::StrContains(again.err, "ALREADY_EXISTS")) << again.err;

  // The same through --spec (YAML in a file), as JSON output.
  const std::string spec_path = work_ + "/dns.yaml";
  std::ofstream(spec_path) << "name: dns\nprotocol: PROTOCOL_UDP\nconnector: edge-1\n"
                              "backends:\n  - address: 127.0.0.1:5353\n";
  CliRun from_spec = Admin({"services", "add", "--spec=" + spec_path, "--output=json"});
  ASSERT_EQ(from_spec.exit_code, 0) << Describe(from_spec);
  google::protobuf::Struct registered = ParseJsonObject(from_spec.out);
  EXPECT_EQ(registered.fields().at("origin").string_value(), "api") << from_spec.out;
  EXPECT_FALSE(registered.fields().at("vip").string_value().empty()) << from_spec.out;

  CliRun list = Admin({"services", "list"});
  ASSERT_EQ(list.exit_code, 0) << Describe(list);
  EXPECT_TRUE(absl::StartsWith(list.out, "TENANT  NAME")) << list.out;
  for (const char* name : {"echo", "web", "dns"}) {
    EXPECT_TRUE(absl::StrContains(list.out, absl::StrCat("acme    ", name, " "))) << list.out;
  }

  CliRun json = Admin({"services", "list", "--output=json"});
  ASSERT_EQ(json.exit_code, 0) << Describe(json);
  EXPECT_EQ(ParseJsonObject(json.out).fields().at("services").list_value().values_size(), 3)
      << json.out;

  for (const char* name : {"web", "dns"}) {
    CliRun rm = Admin({"services", "rm", name});
    EXPECT_EQ(rm.exit_code, 0) << Describe(rm);
    EXPECT_TRUE(absl::StrContains(rm.out, absl::StrCat("Deregistered service ", name)));
  }
  CliRun after = Admin({"services", "list"});
  ASSERT_EQ(after.exit_code, 0) << Describe(after);
  EXPECT_FALSE(absl::StrContains(after.out, "web")) << after.out;
  EXPECT_TRUE(absl::StrContains(after.out, "echo")) << after.out;

  CliRun gone = Admin({"services", "rm", "web"});
  EXPECT_EQ(gone.exit_code, 1) << Describe(gone);
  EXPECT_TRUE(absl::StrContains(gone.err, "NOT_FOUND")) << gone.err;
  // A service from a connector's file is the file's to remove.
  CliRun config = Admin({"services", "rm", "echo"});
  EXPECT_EQ(config.exit_code, 1) << Describe(config);
  EXPECT_TRUE(absl::StrContains(config.err, "FAILED_PRECONDITION")) << config.err;
}

TEST_F(FerryctlAdminTest, LeasesListsTheServicesVip) {
  CliRun services = Admin({"services", "list", "--output=json"});
  ASSERT_EQ(services.exit_code, 0) << Describe(services);
  const google::protobuf::Struct services_json = ParseJsonObject(services.out);
  const auto& list = services_json.fields().at("services").list_value();
  ASSERT_EQ(list.values_size(), 1) << services.out;
  const std::string vip = list.values(0).struct_value().fields().at("vip").string_value();
  ASSERT_FALSE(vip.empty()) << services.out;

  CliRun table = Admin({"leases"});
  ASSERT_EQ(table.exit_code, 0) << Describe(table);
  EXPECT_TRUE(absl::StartsWith(table.out, "TENANT  SERVICE  VIP")) << table.out;
  EXPECT_TRUE(absl::StrContains(table.out, absl::StrCat("acme    echo     ", vip))) << table.out;

  CliRun json = Admin({"leases", "--output=json"});
  ASSERT_EQ(json.exit_code, 0) << Describe(json);
  const google::protobuf::Struct leases_json = ParseJsonObject(json.out);
  const auto& leases = leases_json.fields().at("leases").list_value();
  ASSERT_EQ(leases.values_size(), 1) << json.out;
  EXPECT_EQ(leases.values(0).struct_value().fields().at("vip").string_value(), vip);
  EXPECT_FALSE(leases.values(0).struct_value().fields().at("pinned").bool_value());
}

TEST_F(FerryctlAdminTest, SessionsListsAnOpenedSession) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      fabric_->Channel("acme", "agent", "laptop");
  ASSERT_TRUE(channel.ok()) << channel.status();
  std::unique_ptr<v1::Sessions::Stub> sessions = v1::Sessions::NewStub(*channel);
  v1::OpenSessionRequest request;
  request.set_service("echo");
  v1::OpenSessionResponse response;
  grpc::Status status;
  for (absl::Time deadline = absl::Now() + absl::Seconds(15);;) {
    response.Clear();
    status = sessions->OpenSession(harness::ContextWithDeadline().get(), request, &response);
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE || absl::Now() > deadline) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_TRUE(status.ok()) << status.error_message();

  CliRun table = Admin({"sessions"});
  ASSERT_EQ(table.exit_code, 0) << Describe(table);
  EXPECT_TRUE(absl::StartsWith(table.out, "SESSION")) << table.out;
  EXPECT_TRUE(absl::StrContains(table.out, "acme    echo     laptop  edge-1     relay-1  relay"))
      << table.out;

  CliRun json = Admin({"sessions", "--output=json"});
  ASSERT_EQ(json.exit_code, 0) << Describe(json);
  const google::protobuf::Struct sessions_json = ParseJsonObject(json.out);
  const auto& list = sessions_json.fields().at("sessions").list_value();
  ASSERT_GE(list.values_size(), 1) << json.out;
  EXPECT_EQ(list.values(0).struct_value().fields().at("sessionId").string_value().size(), 16u)
      << json.out;

  CliRun dashboard = Admin({"status"});
  ASSERT_EQ(dashboard.exit_code, 0) << Describe(dashboard);
  EXPECT_TRUE(absl::StrContains(dashboard.out, "SESSIONS (1)")) << dashboard.out;
  EXPECT_TRUE(absl::StrContains(dashboard.out, "laptop")) << dashboard.out;
}

TEST_F(FerryctlAdminTest, ConnectionComesFromTheEnvironment) {
  CliRun run = Ferryctl({"leases"}, {{"FERRY_INTERMEDIATE", fabric_->intermediate().grpc_address()},
                                     {"FERRY_CA_CERT", admin_->ca_cert},
                                     {"FERRY_CERT", admin_->cert},
                                     {"FERRY_KEY", admin_->key}});
  EXPECT_EQ(run.exit_code, 0) << Describe(run);
  EXPECT_TRUE(absl::StrContains(run.out, "echo")) << run.out;
}

TEST_F(FerryctlAdminTest, BadFlagIsAUsageErrorAndNothingIsSent) {
  CliRun run = Admin({"services", "list"}, {"--colour=always"});
  EXPECT_EQ(run.exit_code, 2) << Describe(run);
  EXPECT_TRUE(absl::StrContains(run.err, "unknown flag --colour")) << run.err;
  CliRun missing = Ferryctl({"sessions"});
  EXPECT_EQ(missing.exit_code, 2) << Describe(missing);
  EXPECT_TRUE(absl::StrContains(missing.err, "--ca_cert is not set (nor FERRY_CA_CERT)"))
      << missing.err;
}

TEST_F(FerryctlAdminTest, UnreachableIntermediateExitsThreeAndSaysWhere) {
  const std::string closed = ClosedPort();
  CliRun run = Ferryctl({"status", "--intermediate=" + closed, "--ca_cert=" + admin_->ca_cert,
                         "--cert=" + admin_->cert, "--key=" + admin_->key, "--timeout=3s"});
  EXPECT_EQ(run.exit_code, 3) << Describe(run);
  EXPECT_TRUE(absl::StrContains(run.err, "could not reach the Intermediate at " + closed))
      << run.err;
  EXPECT_TRUE(run.out.empty()) << run.out;
}

// An agent certificate is not an admin: the Intermediate's refusal is printed
// with its code and the command fails (exit 1, not "unreachable").
TEST_F(FerryctlAdminTest, NonAdminCertificateIsRefusedWithItsCode) {
  absl::StatusOr<TlsFiles> agent = fabric_->Tenant("acme").Agent("laptop");
  ASSERT_TRUE(agent.ok()) << agent.status();
  CliRun run =
      Ferryctl({"leases", "--intermediate=" + fabric_->intermediate().grpc_address(),
                "--ca_cert=" + agent->ca_cert, "--cert=" + agent->cert, "--key=" + agent->key});
  EXPECT_EQ(run.exit_code, 1) << Describe(run);
  EXPECT_TRUE(absl::StrContains(run.err, "PERMISSION_DENIED")) << run.err;
}

}  // namespace
}  // namespace ferry
