#include "health/tcp_probe.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <utility>
#include <vector>

#include "common/unique_fd.h"
#include "dataplane/testing/loop_thread.h"
#include "gtest/gtest.h"
#include "health/probe_test_util.h"
#include "health/testing/test_servers.h"

namespace ferry::health {
namespace {

using dataplane::EventLoop;
using dataplane::SocketAddress;
using dataplane::test::LoopThread;
using test::RunProbe;

ProbeResult ProbeTcp(LoopThread& loop_thread, const SocketAddress& address,
                     absl::Duration timeout = absl::Seconds(5)) {
  return RunProbe(loop_thread, [&](EventLoop& loop, ProbeCore::Done done) {
    return TcpProbe::Start(loop, address, timeout, std::move(done));
  });
}

TEST(TcpProbeTest, ListeningPortIsOk) {
  LoopThread loop_thread;
  for (const char* ip : {"127.0.0.1", "::1"}) {
    testing::TcpTestServer server(ip);
    const ProbeResult result = ProbeTcp(loop_thread, server.address());
    EXPECT_TRUE(result.ok) << ip << ": " << result.detail;
    EXPECT_EQ(result.detail, "ok");
  }
}

TEST(TcpProbeTest, ClosedPortFailsWithConnectRefused) {
  LoopThread loop_thread;
  testing::TcpTestServer server;
  server.Stop();
  const ProbeResult result = ProbeTcp(loop_thread, server.address());
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.detail, "connect: Connection refused");
}

TEST(TcpProbeTest, UnansweredConnectTimesOut) {
  // A listener with a full backlog that never accepts leaves further SYNs unanswered.
  LoopThread loop_thread;
  UniqueFd listener(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(listener);
  SocketAddress address = *dataplane::ParseSocketAddress("127.0.0.1:1");
  reinterpret_cast<sockaddr_in*>(address.get())->sin_port = 0;
  ASSERT_EQ(bind(listener.get(), address.get(), address.length), 0);
  ASSERT_EQ(listen(listener.get(), 0), 0);
  socklen_t length = sizeof(address.storage);
  ASSERT_EQ(getsockname(listener.get(), address.get(), &length), 0);
  address.length = length;
  // Fill the backlog with connections nobody accepts.
  std::vector<UniqueFd> fillers;
  for (int i = 0; i < 4; ++i) {
    fillers.emplace_back(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    connect(fillers.back().get(), address.get(), address.length);
  }
  absl::SleepFor(absl::Milliseconds(50));
  const ProbeResult result = ProbeTcp(loop_thread, address, absl::Milliseconds(300));
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.detail, "timeout");
}

TEST(TcpProbeTest, DestroyedProbeNeverCallsDone) {
  LoopThread loop_thread;
  testing::TcpTestServer server;
  bool called = false;
  loop_thread.RunSync([&] {
    auto probe = TcpProbe::Start(*loop_thread.loop(), server.address(), absl::Milliseconds(50),
                                 [&](ProbeResult) { called = true; });
    probe.reset();
  });
  absl::SleepFor(absl::Milliseconds(150));  // past the deadline the probe had
  loop_thread.WaitForRound();
  loop_thread.RunSync([&] { EXPECT_FALSE(called); });
}

}  // namespace
}  // namespace ferry::health
