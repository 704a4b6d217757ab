#include "health/icmp_probe.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <utility>

#include "absl/strings/match.h"
#include "dataplane/testing/loop_thread.h"
#include "gtest/gtest.h"
#include "health/probe_test_util.h"

namespace ferry::health {
namespace {

using dataplane::EventLoop;
using dataplane::test::LoopThread;
using test::RunProbe;

// True when this process may open ICMP datagram sockets of `family` (ping_group_range).
bool PingSocketsAllowed(int family) {
  const int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC,
                        family == AF_INET6 ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP});
  if (fd < 0) return false;
  close(fd);
  return true;
}

// //health:icmp_probe_netns_test runs this binary in a network namespace of its own with the
// range opened and FERRY_REQUIRE_ICMP set: there, a skip would hide a failure.
#define SKIP_UNLESS_PING_ALLOWED(family)                                                     \
  if (!PingSocketsAllowed(family)) {                                                         \
    ASSERT_EQ(getenv("FERRY_REQUIRE_ICMP"), nullptr) << "ICMP sockets refused in the netns"; \
    GTEST_SKIP() << "ICMP datagram sockets are not permitted here "                          \
                    "(net.ipv4.ping_group_range); //health:icmp_probe_netns_test runs this " \
                    "in a network namespace of its own";                                     \
  }

ProbeResult Ping(LoopThread& loop_thread, const char* address,
                 absl::Duration timeout = absl::Seconds(5)) {
  const dataplane::SocketAddress target = *dataplane::ParseSocketAddress(address);
  return RunProbe(loop_thread, [&](EventLoop& loop, ProbeCore::Done done) {
    return IcmpProbe::Start(loop, target, timeout, std::move(done));
  });
}

TEST(IcmpProbeTest, LoopbackAnswers) {
  SKIP_UNLESS_PING_ALLOWED(AF_INET);
  LoopThread loop_thread;
  const ProbeResult result = Ping(loop_thread, "127.0.0.1:80");
  EXPECT_TRUE(result.ok) << result.detail;
  EXPECT_EQ(result.detail, "ok");
}

TEST(IcmpProbeTest, Ipv6LoopbackAnswers) {
  SKIP_UNLESS_PING_ALLOWED(AF_INET6);
  LoopThread loop_thread;
  const ProbeResult result = Ping(loop_thread, "[::1]:80");
  EXPECT_TRUE(result.ok) << result.detail;
}

TEST(IcmpProbeTest, UnroutedAddressFails) {
  SKIP_UNLESS_PING_ALLOWED(AF_INET);
  LoopThread loop_thread;
  // TEST-NET-1 (RFC 5737): never answers; with loopback only it is not even routable.
  const ProbeResult result = Ping(loop_thread, "192.0.2.1:1", absl::Milliseconds(300));
  EXPECT_FALSE(result.ok);
  EXPECT_FALSE(result.detail.empty());
}

TEST(IcmpProbeTest, RefusedSocketNamesPingGroupRange) {
  if (PingSocketsAllowed(AF_INET)) {
    GTEST_SKIP() << "ICMP datagram sockets are permitted here; the refusal path cannot be shown";
  }
  LoopThread loop_thread;
  const ProbeResult result = Ping(loop_thread, "127.0.0.1:1");
  EXPECT_FALSE(result.ok);
  EXPECT_TRUE(absl::StrContains(result.detail, "net.ipv4.ping_group_range")) << result.detail;
}

}  // namespace
}  // namespace ferry::health
