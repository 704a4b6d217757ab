#include "dataplane/udp_socket_group.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/unique_fd.h"
#include "dataplane/big_endian.h"
#include "dataplane/frame.h"
#include "gtest/gtest.h"

namespace ferry::dataplane {
namespace {

// How long to wait for loopback datagrams or connections that should arrive at once; only a
// failing test waits this long.
constexpr int kPatienceMs = 5000;

bool IsNonBlocking(int fd) { return (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0; }

// The loopback address of `family` with `port`.
sockaddr_storage Loopback(int family, uint16_t port, socklen_t* length) {
  sockaddr_storage storage{};
  if (family == AF_INET) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
    v4->sin_family = AF_INET;
    v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    v4->sin_port = htons(port);
    *length = sizeof(sockaddr_in);
  } else {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
    v6->sin6_family = AF_INET6;
    v6->sin6_addr = in6addr_loopback;
    v6->sin6_port = htons(port);
    *length = sizeof(sockaddr_in6);
  }
  return storage;
}

// A UDP client socket that sends to the group's port on loopback.
class Client {
 public:
  Client(int family, uint16_t port)
      : fd_(socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0)),
        to_(Loopback(family, port, &to_length_)) {
    EXPECT_TRUE(fd_);
  }

  void Send(const std::vector<uint8_t>& datagram) {
    ASSERT_EQ(sendto(fd_.get(), datagram.data(), datagram.size(), 0,
                     reinterpret_cast<const sockaddr*>(&to_), to_length_),
              static_cast<ssize_t>(datagram.size()));
  }

 private:
  UniqueFd fd_;
  socklen_t to_length_ = 0;
  sockaddr_storage to_;
};

// A frame-sized datagram whose flow_id is `flow_id` (the rest is filler).
std::vector<uint8_t> DatagramWithFlow(uint32_t flow_id) {
  std::vector<uint8_t> datagram(kHeaderSize + 4, 0xAB);
  StoreBigEndian32(datagram.data() + kFlowIdOffset, flow_id);
  return datagram;
}

// Receives until `expected` datagrams arrived on `sockets` in all, or nothing arrives for
// kPatienceMs. received[i] holds what sockets[i] got.
std::vector<std::vector<std::vector<uint8_t>>> ReceiveAll(const std::vector<UniqueFd>& sockets,
                                                          size_t expected) {
  std::vector<std::vector<std::vector<uint8_t>>> received(sockets.size());
  size_t total = 0;
  std::vector<pollfd> polls;
  for (const UniqueFd& fd : sockets) polls.push_back({fd.get(), POLLIN, 0});
  while (total < expected && poll(polls.data(), polls.size(), kPatienceMs) > 0) {
    for (size_t i = 0; i < sockets.size(); ++i) {
      uint8_t buffer[2048];
      ssize_t n;
      while ((n = recv(sockets[i].get(), buffer, sizeof(buffer), 0)) >= 0) {
        received[i].emplace_back(buffer, buffer + n);
        ++total;
      }
    }
  }
  return received;
}

struct SteeringCase {
  std::string host;
  int family;
  int count;
};

class SteeringTest : public ::testing::TestWithParam<SteeringCase> {};

TEST_P(SteeringTest, EveryDatagramArrivesOnSocketFlowIdModCount) {
  const SteeringCase& param = GetParam();
  absl::StatusOr<UdpSocketGroup> group =
      OpenUdpSocketGroup(absl::StrCat(param.host, ":0"), param.count);
  ASSERT_TRUE(group.ok()) << group.status();
  ASSERT_EQ(group->sockets.size(), static_cast<size_t>(param.count));
  ASSERT_NE(group->port, 0);

  constexpr uint32_t kFlows = 200;
  Client client(param.family, group->port);
  for (uint32_t flow_id = 0; flow_id < kFlows; ++flow_id) client.Send(DatagramWithFlow(flow_id));

  const auto received = ReceiveAll(group->sockets, kFlows);
  std::vector<bool> seen(kFlows, false);
  for (size_t i = 0; i < received.size(); ++i) {
    for (const std::vector<uint8_t>& datagram : received[i]) {
      ASSERT_EQ(datagram.size(), kHeaderSize + 4);
      const uint32_t flow_id = LoadBigEndian32(datagram.data() + kFlowIdOffset);
      ASSERT_LT(flow_id, kFlows);
      EXPECT_FALSE(seen[flow_id]) << "flow " << flow_id << " twice";
      seen[flow_id] = true;
      EXPECT_EQ(WorkerForFlow(flow_id, param.count), i)
          << "flow " << flow_id << " arrived on socket " << i;
    }
  }
  for (uint32_t flow_id = 0; flow_id < kFlows; ++flow_id) {
    EXPECT_TRUE(seen[flow_id]) << "flow " << flow_id << " never arrived";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Groups, SteeringTest,
    ::testing::Values(SteeringCase{"127.0.0.1", AF_INET, 4}, SteeringCase{"127.0.0.1", AF_INET, 3},
                      SteeringCase{"127.0.0.1", AF_INET, 1}, SteeringCase{"[::1]", AF_INET6, 4},
                      SteeringCase{"[::1]", AF_INET6, 1}),
    [](const ::testing::TestParamInfo<SteeringCase>& info) {
      return absl::StrCat(info.param.family == AF_INET ? "Ipv4" : "Ipv6", "Of", info.param.count);
    });

TEST(UdpSocketGroupTest, DatagramsTooShortForAFlowIdGoToSocketZero) {
  absl::StatusOr<UdpSocketGroup> group = OpenUdpSocketGroup("127.0.0.1:0", 4);
  ASSERT_TRUE(group.ok()) << group.status();
  Client client(AF_INET, group->port);
  // Every length from empty to one byte short of the flow_id's end; 0xFF filler everywhere, which
  // would steer to socket 3 if the program read it as a flow_id.
  constexpr size_t kShortest = kFlowIdOffset + 4;
  for (size_t length = 0; length < kShortest; ++length) {
    client.Send(std::vector<uint8_t>(length, 0xFF));
  }
  // The shortest datagram that holds one is steered by it.
  std::vector<uint8_t> just_enough(kShortest, 0);
  StoreBigEndian32(just_enough.data() + kFlowIdOffset, 3);
  client.Send(just_enough);

  const auto received = ReceiveAll(group->sockets, kShortest + 1);
  ASSERT_EQ(received[0].size(), kShortest);
  for (size_t i = 0; i < kShortest; ++i) EXPECT_EQ(received[0][i].size(), i);
  EXPECT_TRUE(received[1].empty());
  EXPECT_TRUE(received[2].empty());
  ASSERT_EQ(received[3].size(), 1u);
  EXPECT_EQ(received[3][0].size(), kShortest);
}

TEST(UdpSocketGroupTest, AllSocketsShareOnePortAndAreNonBlocking) {
  absl::StatusOr<UdpSocketGroup> group = OpenUdpSocketGroup("127.0.0.1:0", 3);
  ASSERT_TRUE(group.ok()) << group.status();
  for (const UniqueFd& fd : group->sockets) {
    sockaddr_in bound{};
    socklen_t length = sizeof(bound);
    ASSERT_EQ(getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &length), 0);
    EXPECT_EQ(ntohs(bound.sin_port), group->port);
    EXPECT_EQ(ntohl(bound.sin_addr.s_addr), INADDR_LOOPBACK);
    EXPECT_TRUE(IsNonBlocking(fd.get()));
    EXPECT_NE(fcntl(fd.get(), F_GETFD) & FD_CLOEXEC, 0);
  }
}

TEST(UdpSocketGroupTest, SetsBufferSizesWhenAsked) {
  constexpr int kBytes = 4096;
  absl::StatusOr<UdpSocketGroup> group = OpenUdpSocketGroup("127.0.0.1:0", 2, kBytes);
  ASSERT_TRUE(group.ok()) << group.status();
  for (const UniqueFd& fd : group->sockets) {
    for (const int option : {SO_RCVBUF, SO_SNDBUF}) {
      int value = 0;
      socklen_t length = sizeof(value);
      ASSERT_EQ(getsockopt(fd.get(), SOL_SOCKET, option, &value, &length), 0);
      EXPECT_EQ(value, 2 * kBytes) << "Linux reports twice the size it was given";
    }
  }
}

TEST(UdpSocketGroupTest, BadArgumentsAreInvalid) {
  for (const auto& [address, count] : std::vector<std::pair<std::string, int>>{
           {"127.0.0.1:0", 0}, {"127.0.0.1:0", -1}, {"127.0.0.1", 2}, {"::1:0", 2}}) {
    absl::StatusOr<UdpSocketGroup> group = OpenUdpSocketGroup(address, count);
    EXPECT_EQ(group.status().code(), absl::StatusCode::kInvalidArgument)
        << address << " x " << count << ": " << group.status();
    EXPECT_NE(group.status().message().find(address), std::string::npos) << group.status();
  }
}

TEST(UdpSocketGroupTest, APortHeldByAPlainSocketIsInUse) {
  UniqueFd holder(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  socklen_t length = 0;
  sockaddr_storage any_port = Loopback(AF_INET, 0, &length);
  ASSERT_EQ(bind(holder.get(), reinterpret_cast<sockaddr*>(&any_port), length), 0);
  sockaddr_in bound{};
  length = sizeof(bound);
  ASSERT_EQ(getsockname(holder.get(), reinterpret_cast<sockaddr*>(&bound), &length), 0);
  const std::string address = absl::StrCat("127.0.0.1:", ntohs(bound.sin_port));

  absl::StatusOr<UdpSocketGroup> group = OpenUdpSocketGroup(address, 2);
  EXPECT_EQ(group.status().code(), absl::StatusCode::kAlreadyExists) << group.status();
  EXPECT_NE(group.status().message().find(address), std::string::npos) << group.status();
}

TEST(UdpSocketGroupTest, AnotherGroupCannotJoinAnExistingGroupsPort) {
  // Both groups use SO_REUSEPORT under the same user: unless the new group's first socket has a
  // reuseport group of its own before it binds, it would silently join the existing group and
  // scramble both groups' steering.
  for (const auto& [first_count, second_count] :
       std::vector<std::pair<int, int>>{{1, 1}, {1, 2}, {2, 1}, {2, 2}}) {
    absl::StatusOr<UdpSocketGroup> first = OpenUdpSocketGroup("127.0.0.1:0", first_count);
    ASSERT_TRUE(first.ok()) << first.status();
    absl::StatusOr<UdpSocketGroup> second =
        OpenUdpSocketGroup(absl::StrCat("127.0.0.1:", first->port), second_count);
    EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists)
        << "a group of " << second_count << " on the port of a group of " << first_count << ": "
        << second.status();
  }
}

TEST(WorkerForFlowTest, IsFlowIdModWorkers) {
  struct Case {
    uint32_t flow_id;
    uint32_t workers;
    uint32_t worker;
  };
  for (const Case& c : std::vector<Case>{{0, 4, 0},
                                         {5, 4, 1},
                                         {199, 4, 3},
                                         {0xFFFFFFFFu, 3, 0},
                                         {0xFFFFFFFEu, 7, 0xFFFFFFFEu % 7},
                                         {7, 1, 0},
                                         {7, 0, 0}}) {
    EXPECT_EQ(WorkerForFlow(c.flow_id, c.workers), c.worker)
        << c.flow_id << " over " << c.workers << " workers";
  }
}

// Connects a client to loopback:`port`; the connection completes in the kernel's backlog.
UniqueFd Connect(uint16_t port) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  socklen_t length = 0;
  sockaddr_storage to = Loopback(AF_INET, port, &length);
  EXPECT_EQ(connect(fd.get(), reinterpret_cast<sockaddr*>(&to), length), 0) << strerror(errno);
  return fd;
}

TEST(TcpListenerGroupTest, ListenersShareAPortAndAcceptConnections) {
  absl::StatusOr<TcpListenerGroup> group = OpenTcpListenerGroup("127.0.0.1:0", 2);
  ASSERT_TRUE(group.ok()) << group.status();
  ASSERT_EQ(group->listeners.size(), 2u);
  ASSERT_NE(group->port, 0);
  for (const UniqueFd& listener : group->listeners) {
    EXPECT_TRUE(IsNonBlocking(listener.get()));
    sockaddr_in bound{};
    socklen_t length = sizeof(bound);
    ASSERT_EQ(getsockname(listener.get(), reinterpret_cast<sockaddr*>(&bound), &length), 0);
    EXPECT_EQ(ntohs(bound.sin_port), group->port);
  }

  // Enough connections that the kernel's hash gives each listener some (all 32 on one of two
  // listeners has probability 2^-31).
  constexpr int kConnections = 32;
  std::vector<UniqueFd> clients;
  for (int i = 0; i < kConnections; ++i) clients.push_back(Connect(group->port));

  std::vector<int> accepted(2, 0);
  std::vector<UniqueFd> servers;
  std::vector<pollfd> polls;
  for (const UniqueFd& listener : group->listeners) polls.push_back({listener.get(), POLLIN, 0});
  while (static_cast<int>(servers.size()) < kConnections &&
         poll(polls.data(), polls.size(), kPatienceMs) > 0) {
    for (size_t i = 0; i < polls.size(); ++i) {
      int fd;
      while ((fd = accept4(polls[i].fd, nullptr, nullptr, SOCK_CLOEXEC)) >= 0) {
        servers.emplace_back(fd);
        ++accepted[i];
      }
      EXPECT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK) << strerror(errno);
    }
  }
  EXPECT_EQ(accepted[0] + accepted[1], kConnections);
  EXPECT_GT(accepted[0], 0);
  EXPECT_GT(accepted[1], 0);
}

TEST(TcpListenerTest, ReusePortDecidesWhetherASecondListenerMayShareThePort) {
  absl::StatusOr<UniqueFd> shared = OpenTcpListener("127.0.0.1:0", /*reuse_port=*/true);
  ASSERT_TRUE(shared.ok()) << shared.status();
  EXPECT_TRUE(IsNonBlocking(shared->get()));
  sockaddr_in bound{};
  socklen_t length = sizeof(bound);
  ASSERT_EQ(getsockname(shared->get(), reinterpret_cast<sockaddr*>(&bound), &length), 0);
  const std::string address = absl::StrCat("127.0.0.1:", ntohs(bound.sin_port));
  absl::StatusOr<UniqueFd> second = OpenTcpListener(address, /*reuse_port=*/true);
  EXPECT_TRUE(second.ok()) << second.status();

  absl::StatusOr<UniqueFd> exclusive = OpenTcpListener("127.0.0.1:0", /*reuse_port=*/false);
  ASSERT_TRUE(exclusive.ok()) << exclusive.status();
  length = sizeof(bound);
  ASSERT_EQ(getsockname(exclusive->get(), reinterpret_cast<sockaddr*>(&bound), &length), 0);
  const std::string exclusive_address = absl::StrCat("127.0.0.1:", ntohs(bound.sin_port));
  absl::StatusOr<UniqueFd> refused = OpenTcpListener(exclusive_address, /*reuse_port=*/true);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kAlreadyExists) << refused.status();
  EXPECT_EQ(OpenTcpListenerGroup("127.0.0.1:0", 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(TcpListenerTest, ListensWithABacklogOf1024) {
  absl::StatusOr<UniqueFd> listener = OpenTcpListener("127.0.0.1:0", /*reuse_port=*/false);
  ASSERT_TRUE(listener.ok()) << listener.status();
  // For a listening socket, TCP_INFO's tcpi_sacked is the backlog (min(backlog, somaxconn)).
  tcp_info info{};
  socklen_t length = sizeof(info);
  ASSERT_EQ(getsockopt(listener->get(), IPPROTO_TCP, TCP_INFO, &info, &length), 0);
  EXPECT_EQ(info.tcpi_sacked, 1024u);
}

}  // namespace
}  // namespace ferry::dataplane
