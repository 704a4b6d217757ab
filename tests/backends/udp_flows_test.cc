// UdpFlowSet against in-process UDP servers that behave well or badly, so that
// each of its counts is shown to move when (and only when) it should.
#include "tests/backends/udp_flows.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace ferry::backends {
namespace {

struct Peer {
  sockaddr_in address;
  socklen_t size;
};

// A UDP server on 127.0.0.1:0 whose thread hands every datagram to `handle`,
// which answers through `send`.
class FakeServer {
 public:
  using Send = std::function<void(const Peer& to, const std::string& data)>;
  using Handle = std::function<void(const Peer& from, const std::string& data, const Send& send)>;

  explicit FakeServer(Handle handle) : handle_(std::move(handle)) {
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&sin), sizeof(sin));
    socklen_t size = sizeof(sin);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&sin), &size);
    address_ = absl::StrCat("127.0.0.1:", ntohs(sin.sin_port));
    thread_ = std::thread([this] { Loop(); });
  }
  ~FakeServer() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }

  const std::string& address() const { return address_; }

 private:
  void Loop() {
    const Send send = [this](const Peer& to, const std::string& data) {
      sendto(fd_, data.data(), data.size(), 0, reinterpret_cast<const sockaddr*>(&to.address),
             to.size);
    };
    char buffer[65536];
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      Peer from{};
      from.size = sizeof(from.address);
      const ssize_t n = recvfrom(fd_, buffer, sizeof(buffer), 0,
                                 reinterpret_cast<sockaddr*>(&from.address), &from.size);
      if (n >= 0) handle_(from, std::string(buffer, static_cast<size_t>(n)), send);
    }
  }

  Handle handle_;
  int fd_ = -1;
  std::string address_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

UdpExchangeOptions Quick(int datagrams) {
  UdpExchangeOptions options;
  options.datagrams_per_flow = datagrams;
  options.max_attempts = 3;
  options.retry_after = absl::Milliseconds(100);
  options.timeout = absl::Seconds(20);
  return options;
}

std::unique_ptr<UdpFlowSet> OpenFlows(size_t count, const std::string& target,
                                      std::vector<std::string> prefixes = {""}) {
  std::vector<UdpFlowSpec> specs(count, UdpFlowSpec{target, std::move(prefixes)});
  absl::StatusOr<std::unique_ptr<UdpFlowSet>> flows = UdpFlowSet::Open(std::move(specs));
  EXPECT_TRUE(flows.ok()) << flows.status();
  return flows.ok() ? *std::move(flows) : nullptr;
}

TEST(UdpFlowsTest, AnHonestEchoAnswersEveryDatagram) {
  FakeServer echo([](const Peer& from, const std::string& data, const FakeServer::Send& send) {
    send(from, data);
  });
  auto flows = OpenFlows(20, echo.address());
  ASSERT_NE(flows, nullptr);
  UdpExchangeOptions options = Quick(5);
  options.padding = 700;
  ASSERT_TRUE(flows->Exchange(options).ok());
  ASSERT_TRUE(flows->Exchange(Quick(2)).ok());  // The sequence continues.
  const UdpFlowStats total = flows->Total();
  EXPECT_EQ(total.sent, 140u);
  EXPECT_EQ(total.answered, 140u);
  EXPECT_EQ(total.foreign, 0u);
  EXPECT_EQ(total.duplicates, 0u);
  EXPECT_EQ(total.answered_by_prefix.at(""), 140u);
}

TEST(UdpFlowsTest, RepliesToTheWrongFlowAreForeign) {
  // Answers each datagram to the peer that sent the previous one.
  auto previous = std::make_shared<Peer>();
  auto have_previous = std::make_shared<bool>(false);
  FakeServer crossed([previous, have_previous](const Peer& from, const std::string& data,
                                               const FakeServer::Send& send) {
    if (*have_previous) send(*previous, data);
    *previous = from;
    *have_previous = true;
  });
  auto flows = OpenFlows(10, crossed.address());
  ASSERT_NE(flows, nullptr);
  (void)flows->Exchange(Quick(2));
  const UdpFlowStats total = flows->Total();
  EXPECT_GT(total.foreign, 0u);
  EXPECT_FALSE(total.foreign_samples.empty());
}

TEST(UdpFlowsTest, AReplyWithAnotherPrefixIsForeign) {
  FakeServer tenant_b([](const Peer& from, const std::string& data, const FakeServer::Send& send) {
    send(from, "tenant-b:" + data);
  });
  auto expects_a = OpenFlows(3, tenant_b.address(), {"tenant-a:"});
  auto expects_b = OpenFlows(3, tenant_b.address(), {"tenant-b:"});
  ASSERT_NE(expects_a, nullptr);
  ASSERT_NE(expects_b, nullptr);
  ASSERT_TRUE(expects_a->Exchange(Quick(2)).ok());
  ASSERT_TRUE(expects_b->Exchange(Quick(2)).ok());
  EXPECT_EQ(expects_a->Total().answered, 0u);
  EXPECT_GE(expects_a->Total().foreign, 6u);
  EXPECT_EQ(expects_b->Total().answered, 6u);
  EXPECT_EQ(expects_b->Total().answered_by_prefix.at("tenant-b:"), 6u);
}

TEST(UdpFlowsTest, LostDatagramsAreRetriedAndDuplicatesCounted) {
  // Drops the first copy of every datagram; answers later copies twice.
  auto seen = std::make_shared<std::map<std::string, int>>();
  FakeServer lossy([seen](const Peer& from, const std::string& data, const FakeServer::Send& send) {
    if ((*seen)[data]++ == 0) return;
    send(from, data);
    send(from, data);
  });
  auto flows = OpenFlows(5, lossy.address());
  ASSERT_NE(flows, nullptr);
  ASSERT_TRUE(flows->Exchange(Quick(3)).ok());
  const UdpFlowStats total = flows->Total();
  EXPECT_EQ(total.answered, 15u);
  EXPECT_GE(total.retries, 15u);
  EXPECT_GE(total.duplicates, 1u);
  EXPECT_EQ(total.foreign, 0u);
}

TEST(UdpFlowsTest, ASilentTargetLosesEveryDatagramWithinTheAttempts) {
  FakeServer silent([](const Peer&, const std::string&, const FakeServer::Send&) {});
  auto flows = OpenFlows(4, silent.address());
  ASSERT_NE(flows, nullptr);
  ASSERT_TRUE(flows->Exchange(Quick(2)).ok());
  const UdpFlowStats total = flows->Total();
  EXPECT_EQ(total.sent, 8u);
  EXPECT_EQ(total.answered, 0u);
  EXPECT_EQ(total.retries, 16u);  // 3 attempts each
}

TEST(UdpFlowsTest, EachFlowHasItsOwnSourcePort) {
  FakeServer echo([](const Peer& from, const std::string& data, const FakeServer::Send& send) {
    send(from, data);
  });
  auto flows = OpenFlows(3, echo.address());
  ASSERT_NE(flows, nullptr);
  EXPECT_NE(flows->local_address(0), flows->local_address(1));
  EXPECT_NE(flows->local_address(1), flows->local_address(2));
}

TEST(UdpFlowsTest, BadSpecsAreRefused) {
  EXPECT_EQ(UdpFlowSet::Open({{"127.0.0.1"}}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(UdpFlowSet::Open({{"localhost:53"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(UdpFlowSet::Open({{"127.0.0.1:53", {}}}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ferry::backends
