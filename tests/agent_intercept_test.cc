// The agent's intercept mode end to end (docs/INTERCEPT.md), as a user of it
// sees it: inside the network namespace that
// //tests:agent_intercept_netns_test.sh makes, `curl` of a service's DNS name
// and port reaches its backend with no port mapping, `ping` of an ICMP
// service's VIP is answered exactly while its backend answers, and the VIPs
// leave lo when the agent stops. Skipped unless FERRY_INTERCEPT_NETNS=1 (the
// script sets it): outside that namespace it would change the host.
#include <stdio.h>
#include <sys/wait.h>

#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/harness/fabric_test_base.h"
#include "tests/harness/ferry_process.h"

namespace ferry::harness {
namespace {

constexpr char kTenant[] = "acme";
constexpr char kWeb[] = "web";
constexpr uint32_t kWebPort = 8080;
constexpr char kPing[] = "ping-box";
// The ICMP backend: the other end of the script's veth pair, in a namespace
// of its own whose kernel answers ping.
constexpr char kPingBackend[] = "10.77.0.2";

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs `command` with sh, stderr folded into the output.
CommandResult RunShell(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.output.append(buffer, n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// Whether lo carries `vip`/32 (from `ip -4 -o addr show dev lo`).
bool LoopbackHas(const std::string& vip) {
  return absl::StrContains(RunShell("ip -4 -o addr show dev lo").output,
                           absl::StrCat(" ", vip, "/32 "));
}

// The ICMP backend's namespace stops (1) or starts (0) answering ping.
void SetBackendIgnoresPing(bool ignore) {
  const char* netns = getenv("FERRY_INTERCEPT_BACKEND_NETNS");
  ASSERT_NE(netns, nullptr) << "the script names the backend's namespace";
  CommandResult r = RunShell(absl::StrCat("nsenter --net=", netns, " sh -c 'echo ", ignore ? 1 : 0,
                                          " >/proc/sys/net/ipv4/icmp_echo_ignore_all'"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
}

class AgentInterceptTest : public FabricTest {
 protected:
  void SetUp() override {
    const char* netns = getenv("FERRY_INTERCEPT_NETNS");
    if (netns == nullptr || std::string(netns) != "1") {
      GTEST_SKIP() << "runs only in the namespace of //tests:agent_intercept_netns_test";
    }
    FabricTest::SetUp();
  }

  // Tenant acme: connector edge-1 serves an HTTP service and an ICMP service
  // whose backend is kPingBackend; agent laptop exposes both in intercept
  // mode; the Intermediate answers DNS on 127.0.0.1:53 (resolv.conf).
  void StartInterceptFabric() {
    backends::BackendOptions http;
    http.name = "web-backend";
    http.http = true;
    backends::BackendProcess* backend = StartBackend(http);
    ASSERT_NE(backend, nullptr);
    FabricOptions options;
    options.intermediate.extra_flags = {"--dns_listen=127.0.0.1:53"};
    options.connectors.push_back(
        ConnectorSpec{kTenant,
                      "edge-1",
                      {Service(kWeb, v1::PROTOCOL_TCP, {backend->http()}, kWebPort),
                       Service(kPing, v1::PROTOCOL_ICMP, {kPingBackend})}});
    AgentSpec agent{kTenant, "laptop", {kWeb, kPing}};
    agent.extra_flags = {"--intercept"};
    agent.default_listen = true;
    options.agents.push_back(agent);
    ASSERT_NO_FATAL_FAILURE(StartFabric(std::move(options)));
    ASSERT_NE(fabric_, nullptr);
  }
};

TEST_F(AgentInterceptTest, CurlByNameAndPingOfTheVipWorkAndVipsLeaveAtExit) {
  ASSERT_NO_FATAL_FAILURE(StartInterceptFabric());
  FabricProcess& agent = fabric_->agent("laptop");
  EXPECT_EQ(agent.Ready("intercept_interface"), "lo");

  // The agent listens on the VIP and the service's own port.
  const std::string web_listen = agent.exposure(kWeb);
  std::vector<std::string> host_port = absl::StrSplit(web_listen, ':');
  ASSERT_EQ(host_port.size(), 2u) << web_listen;
  const std::string web_vip = host_port[0];
  EXPECT_EQ(host_port[1], absl::StrCat(kWebPort));
  EXPECT_TRUE(absl::StartsWith(web_vip, "10.100.0.")) << web_listen;
  const std::string ping_vip = agent.exposure(kPing);
  EXPECT_TRUE(absl::StartsWith(ping_vip, "10.100.0.")) << ping_vip;
  EXPECT_TRUE(LoopbackHas(web_vip));
  EXPECT_TRUE(LoopbackHas(ping_vip));

  // curl by name: glibc asks the Intermediate's DNS (resolv.conf), which
  // answers the VIP; the agent's listener there carries it to the backend.
  const std::string url =
      absl::StrCat("http://", kWeb, ".", kTenant, ".ferry.internal:", kWebPort, "/");
  CommandResult curl;
  for (int attempt = 0; attempt < 10; ++attempt) {
    curl = RunShell(absl::StrCat("curl -sf --max-time 5 ", url));
    if (curl.exit_code == 0) break;
    absl::SleepFor(absl::Milliseconds(500));  // the session may still be settling
  }
  ASSERT_EQ(curl.exit_code, 0) << "curl " << url << ": " << curl.output;
  EXPECT_EQ(curl.output, "hello from web-backend\n");
  // The name resolves to the VIP the agent listens on.
  CommandResult resolved =
      RunShell(absl::StrCat("getent ahostsv4 ", kWeb, ".", kTenant, ".ferry.internal"));
  EXPECT_TRUE(absl::StartsWith(resolved.output, web_vip + " ")) << resolved.output;

  // ping of the ICMP service's VIP: answered through the fabric by the backend.
  const std::string ping = absl::StrCat("ping -n -c 3 -W 2 ", ping_vip);
  CommandResult answered = RunShell(ping);
  EXPECT_EQ(answered.exit_code, 0) << answered.output;
  EXPECT_TRUE(absl::StrContains(answered.output, absl::StrCat("from ", ping_vip)))
      << answered.output;

  // The backend stops answering: so does the VIP (the kernel of this
  // namespace ignores echo, so only the backend's answer could reach ping).
  ASSERT_NO_FATAL_FAILURE(SetBackendIgnoresPing(true));
  CommandResult silent = RunShell(ping);
  EXPECT_NE(silent.exit_code, 0) << "ping answered while the backend ignores echo:\n"
                                 << silent.output;
  // And it answers again once the backend does.
  ASSERT_NO_FATAL_FAILURE(SetBackendIgnoresPing(false));
  CommandResult again = RunShell(ping);
  EXPECT_EQ(again.exit_code, 0) << again.output;

  // The agent removes the VIPs it added when it stops.
  absl::StatusOr<ExitStatus> stopped = agent.process().Stop();
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_TRUE(stopped->ok()) << stopped->ToString();
  EXPECT_FALSE(LoopbackHas(web_vip));
  EXPECT_FALSE(LoopbackHas(ping_vip));
}

TEST_F(AgentInterceptTest, WithoutCapNetAdminTheAgentExitsTwoNamingIt) {
  absl::StatusOr<std::string> binary = RunfilesPath("agent/ferry-agent");
  ASSERT_TRUE(binary.ok()) << binary.status();
  // Root without CAP_NET_ADMIN in its bounding set execs with no such capability.
  CommandResult r = RunShell(
      absl::StrCat("setpriv --bounding-set=-net_admin ", *binary, " --intercept --expose=web"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "needs CAP_NET_ADMIN")) << r.output;
}

}  // namespace
}  // namespace ferry::harness
