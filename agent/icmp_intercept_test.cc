#include "agent/icmp_intercept.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <vector>

#include "agent/intercept_addresses.h"
#include "agent/testing/network_namespace.h"
#include "gtest/gtest.h"

namespace ferry::agent {
namespace {

using testing::V4;

// An IPv4 packet carrying an ICMP message, with knobs for each field the
// parser looks at.
struct PacketBuilder {
  uint8_t version = 4;
  uint8_t ihl = 5;
  uint8_t protocol = 1;
  uint8_t fragment_high = 0;  // flags and offset bits of byte 6
  uint8_t fragment_low = 0;
  uint8_t type = 8;
  uint8_t code = 0;
  uint16_t identifier = 0x1234;
  size_t icmp_size = 16;
  std::vector<uint8_t> Build() const {
    std::vector<uint8_t> packet(ihl * 4 + icmp_size, 0);
    packet[0] = static_cast<uint8_t>(version << 4 | ihl);
    packet[6] = fragment_high;
    packet[7] = fragment_low;
    packet[9] = protocol;
    packet[12] = 192, packet[13] = 0, packet[14] = 2, packet[15] = 44;  // source
    if (icmp_size >= 8) {
      uint8_t* icmp = packet.data() + ihl * 4;
      icmp[0] = type;
      icmp[1] = code;
      icmp[4] = static_cast<uint8_t>(identifier >> 8);
      icmp[5] = static_cast<uint8_t>(identifier);
    }
    return packet;
  }
};

TEST(ParseEchoRequestTest, TakesOnlyWholeEchoRequests) {
  struct Case {
    const char* name;
    PacketBuilder builder;
    bool ok;
  };
  auto with = [](auto change) {
    PacketBuilder b;
    change(b);
    return b;
  };
  const Case cases[] = {
      {"echo request", PacketBuilder{}, true},
      {"ip options", with([](PacketBuilder& b) { b.ihl = 7; }), true},
      {"bare echo header", with([](PacketBuilder& b) { b.icmp_size = 8; }), true},
      {"short icmp", with([](PacketBuilder& b) { b.icmp_size = 7; }), false},
      {"ipv6 version", with([](PacketBuilder& b) { b.version = 6; }), false},
      {"header length under 20", with([](PacketBuilder& b) { b.ihl = 4; }), false},
      {"udp", with([](PacketBuilder& b) { b.protocol = 17; }), false},
      {"more fragments", with([](PacketBuilder& b) { b.fragment_high = 0x20; }), false},
      {"fragment offset", with([](PacketBuilder& b) { b.fragment_low = 1; }), false},
      {"don't fragment is fine", with([](PacketBuilder& b) { b.fragment_high = 0x40; }), true},
      {"echo reply", with([](PacketBuilder& b) { b.type = 0; }), false},
      {"nonzero code", with([](PacketBuilder& b) { b.code = 1; }), false},
  };
  for (const Case& c : cases) {
    std::vector<uint8_t> packet = c.builder.Build();
    EchoRequest request;
    ASSERT_EQ(ParseEchoRequest(packet, &request), c.ok) << c.name;
    if (!c.ok) continue;
    EXPECT_EQ(request.identifier, 0x1234) << c.name;
    EXPECT_EQ(request.icmp_offset, c.builder.ihl * 4u) << c.name;
    EXPECT_EQ(request.icmp_size, c.builder.icmp_size) << c.name;
    char source[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &request.source, source, sizeof(source));
    EXPECT_STREQ(source, "192.0.2.44") << c.name;
  }
  EchoRequest request;
  EXPECT_FALSE(ParseEchoRequest({}, &request));
  std::vector<uint8_t> truncated = PacketBuilder{}.Build();
  truncated.resize(19);
  EXPECT_FALSE(ParseEchoRequest(truncated, &request));
}

TEST(IsEchoReplyTest, NeedsTypeZeroCodeZeroAndAWholeHeader) {
  const std::vector<uint8_t> reply = {0, 0, 0, 0, 0, 1, 0, 1};
  EXPECT_TRUE(IsEchoReply(reply));
  EXPECT_FALSE(IsEchoReply(absl::MakeConstSpan(reply).subspan(0, 7)));
  EXPECT_FALSE(IsEchoReply(std::vector<uint8_t>{8, 0, 0, 0, 0, 1, 0, 1}));
  EXPECT_FALSE(IsEchoReply(std::vector<uint8_t>{0, 3, 0, 0, 0, 1, 0, 1}));
}

// Real sockets in a namespace of the test's own, where the kernel does not
// answer pings (as intercept mode needs).
class EchoInterceptSocketTest : public testing::NetworkNamespaceTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(NetworkNamespaceTest::SetUp());
    if (IsSkipped()) return;
    std::ofstream("/proc/sys/net/ipv4/icmp_echo_ignore_all") << "1\n";
    absl::StatusOr<std::unique_ptr<InterceptAddresses>> vips = InterceptAddresses::Open("lo");
    ASSERT_TRUE(vips.ok()) << vips.status();
    vips_ = *std::move(vips);
    ASSERT_TRUE(vips_->Add(V4("192.0.2.1")).ok());
    ASSERT_TRUE(vips_->Add(V4("192.0.2.2")).ok());
  }
  std::unique_ptr<InterceptAddresses> vips_;
};

// Waits up to 2s for a datagram on `fd`; its size, or -1.
ssize_t Receive(int fd, uint8_t* buffer, size_t size, sockaddr_in* from) {
  pollfd p = {fd, POLLIN, 0};
  if (poll(&p, 1, 2000) != 1) return -1;
  socklen_t length = sizeof(*from);
  return recvfrom(fd, buffer, size, 0, reinterpret_cast<sockaddr*>(from), &length);
}

TEST_F(EchoInterceptSocketTest, TakesEchoToItsVipAndRepliesFromIt) {
  absl::StatusOr<UniqueFd> first = OpenEchoInterceptSocket(V4("192.0.2.1"));
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<UniqueFd> second = OpenEchoInterceptSocket(V4("192.0.2.2"));
  ASSERT_TRUE(second.ok()) << second.status();

  // The "ping": an ICMP datagram socket (the kernel fills in the identifier).
  std::ofstream("/proc/sys/net/ipv4/ping_group_range") << "0 2147483647\n";
  UniqueFd ping(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_ICMP));
  ASSERT_TRUE(ping) << strerror(errno);
  sockaddr_in vip = {};
  vip.sin_family = AF_INET;
  vip.sin_addr = V4("192.0.2.1");
  const uint8_t request[12] = {8, 0, 0, 0, 0, 0, 0, 7, 'f', 'e', 'r', 'y'};
  ASSERT_EQ(sendto(ping.get(), request, sizeof(request), 0, reinterpret_cast<sockaddr*>(&vip),
                   sizeof(vip)),
            static_cast<ssize_t>(sizeof(request)));

  uint8_t packet[256];
  sockaddr_in from = {};
  ssize_t n = Receive(first->get(), packet, sizeof(packet), &from);
  ASSERT_GT(n, 0);
  EchoRequest echo;
  ASSERT_TRUE(ParseEchoRequest(absl::MakeConstSpan(packet, static_cast<size_t>(n)), &echo));
  EXPECT_EQ(echo.icmp_size, sizeof(request));
  // The socket bound to the other VIP saw nothing.
  EXPECT_EQ(recv(second->get(), packet + 128, 128, MSG_DONTWAIT), -1);

  // Answer as the connector's frame would: an echo reply, same identifier.
  uint8_t* message = packet + echo.icmp_offset;
  message[0] = 0;
  message[2] = message[3] = 0;
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < echo.icmp_size; i += 2) sum += (message[i] << 8) | message[i + 1];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  message[2] = static_cast<uint8_t>(~sum >> 8);
  message[3] = static_cast<uint8_t>(~sum);
  sockaddr_in client = {};
  client.sin_family = AF_INET;
  client.sin_addr = echo.source;
  ASSERT_EQ(sendto(first->get(), message, echo.icmp_size, 0, reinterpret_cast<sockaddr*>(&client),
                   sizeof(client)),
            static_cast<ssize_t>(echo.icmp_size));

  uint8_t reply[64];
  n = Receive(ping.get(), reply, sizeof(reply), &from);
  ASSERT_EQ(n, static_cast<ssize_t>(sizeof(request)));
  EXPECT_TRUE(IsEchoReply(absl::MakeConstSpan(reply, static_cast<size_t>(n))));
  EXPECT_EQ(from.sin_addr.s_addr, V4("192.0.2.1").s_addr);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(reply) + 8, 4), "fery");
}

TEST_F(EchoInterceptSocketTest, VipThatIsNotLocalIsNotFound) {
  absl::StatusOr<UniqueFd> fd = OpenEchoInterceptSocket(V4("192.0.2.99"));
  EXPECT_TRUE(absl::IsNotFound(fd.status())) << fd.status();
}

}  // namespace
}  // namespace ferry::agent
