#include "health/udp_probe.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <string>
#include <utility>

#include "common/unique_fd.h"
#include "dataplane/testing/loop_thread.h"
#include "gtest/gtest.h"
#include "health/probe_test_util.h"
#include "health/testing/test_servers.h"

namespace ferry::health {
namespace {

using dataplane::EventLoop;
using dataplane::test::LoopThread;
using test::RunProbe;

ProbeResult ProbeUdp(LoopThread& loop_thread, const v1::HealthCheck::Udp& udp,
                     const dataplane::SocketAddress& address,
                     absl::Duration timeout = absl::Seconds(5)) {
  return RunProbe(loop_thread, [&](EventLoop& loop, ProbeCore::Done done) {
    return UdpProbe::Start(loop, udp, address, timeout, std::move(done));
  });
}

TEST(UdpProbeTest, ReplyPrefixDecides) {
  struct Case {
    const char* name;
    std::string reply;  // empty: the server echoes
    std::string send, expect_prefix;
    bool ok;
    std::string detail;
  };
  const Case cases[] = {
      {"any reply counts", "whatever", "", "", true, "ok"},
      {"prefix matches", "pong 1", "", "pong", true, "ok"},
      {"prefix mismatch", "nope", "", "pong", false, "udp reply does not start with \"pong\""},
      {"default payload is ping", "", "", "ping", true, "ok"},
      {"custom payload echoed", "", "hello", "hello", true, "ok"},
  };
  LoopThread loop_thread;
  for (const Case& c : cases) {
    testing::UdpTestServer server(c.reply);
    v1::HealthCheck::Udp udp;
    udp.set_send(c.send);
    udp.set_expect_prefix(c.expect_prefix);
    const ProbeResult result = ProbeUdp(loop_thread, udp, server.address());
    EXPECT_EQ(result.ok, c.ok) << c.name << ": " << result.detail;
    EXPECT_EQ(result.detail, c.detail) << c.name;
  }
}

TEST(UdpProbeTest, Ipv6Works) {
  LoopThread loop_thread;
  testing::UdpTestServer server("pong", "::1");
  EXPECT_TRUE(ProbeUdp(loop_thread, v1::HealthCheck::Udp(), server.address()).ok);
}

TEST(UdpProbeTest, ClosedPortFailsAtOnceWithPortUnreachable) {
  LoopThread loop_thread;
  testing::UdpTestServer server;
  server.Stop();
  // A long timeout: the ICMP port unreachable must end the probe, not the deadline.
  const ProbeResult result =
      ProbeUdp(loop_thread, v1::HealthCheck::Udp(), server.address(), absl::Seconds(30));
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.detail, "udp: port unreachable");
}

TEST(UdpProbeTest, SilentPeerTimesOut) {
  LoopThread loop_thread;
  // A bound socket that never answers.
  UniqueFd silent(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  dataplane::SocketAddress address = *dataplane::ParseSocketAddress("127.0.0.1:1");
  reinterpret_cast<sockaddr_in*>(address.get())->sin_port = 0;
  ASSERT_EQ(bind(silent.get(), address.get(), address.length), 0);
  socklen_t length = sizeof(address.storage);
  ASSERT_EQ(getsockname(silent.get(), address.get(), &length), 0);
  const ProbeResult result =
      ProbeUdp(loop_thread, v1::HealthCheck::Udp(), address, absl::Milliseconds(200));
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.detail, "timeout");
}

}  // namespace
}  // namespace ferry::health
