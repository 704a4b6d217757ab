#include "dataplane/datagram_batch.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "common/unique_fd.h"
#include "dataplane/testing/allocation_counter.h"
#include "gtest/gtest.h"

namespace ferry::dataplane {
namespace {

// How long to wait for loopback datagrams that should arrive at once; only a failing test waits
// this long.
constexpr int kPatienceMs = 5000;

// A UDP socket bound to an ephemeral loopback port of `family`.
struct BoundSocket {
  UniqueFd fd;
  sockaddr_storage address{};
  socklen_t length = 0;
};

BoundSocket BindLoopback(int family) {
  BoundSocket socket_out;
  socket_out.fd.reset(socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  EXPECT_TRUE(socket_out.fd);
  sockaddr_storage any{};
  socklen_t length;
  if (family == AF_INET) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&any);
    v4->sin_family = AF_INET;
    v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    length = sizeof(sockaddr_in);
  } else {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&any);
    v6->sin6_family = AF_INET6;
    v6->sin6_addr = in6addr_loopback;
    length = sizeof(sockaddr_in6);
  }
  EXPECT_EQ(bind(socket_out.fd.get(), reinterpret_cast<sockaddr*>(&any), length), 0);
  socket_out.length = sizeof(socket_out.address);
  EXPECT_EQ(getsockname(socket_out.fd.get(), reinterpret_cast<sockaddr*>(&socket_out.address),
                        &socket_out.length),
            0);
  return socket_out;
}

bool WaitReadable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, kPatienceMs) == 1;
}

// Datagram `seq`: its length and bytes are functions of `seq`, the first 4 bytes are `seq`.
size_t LengthOf(uint32_t seq) { return 4 + (seq * 37) % 600; }
uint8_t ByteOf(uint32_t seq, size_t i) { return static_cast<uint8_t>(seq * 13 + i); }

void Fill(absl::Span<uint8_t> buffer, uint32_t seq) {
  std::memcpy(buffer.data(), &seq, sizeof(seq));
  for (size_t i = sizeof(seq); i < LengthOf(seq); ++i) buffer[i] = ByteOf(seq, i);
}

class RoundTripTest : public ::testing::TestWithParam<int> {};

TEST_P(RoundTripTest, HundredDatagramsArriveIntactFromTheirSender) {
  BoundSocket server = BindLoopback(GetParam());
  BoundSocket client = BindLoopback(GetParam());
  SendBatch send(16, 2048);
  RecvBatch receive(8, 2048);
  constexpr uint32_t kDatagrams = 100;
  std::vector<bool> seen(kDatagrams, false);
  size_t received = 0;
  size_t largest_receive = 0;

  // Receives until everything flushed so far arrived.
  const auto drain = [&](size_t expected) {
    while (received < expected && WaitReadable(server.fd.get())) {
      const int n = receive.Receive(server.fd.get());
      ASSERT_GE(n, 0) << strerror(-n);
      ASSERT_EQ(static_cast<size_t>(n), receive.size());
      largest_receive = std::max(largest_receive, receive.size());
      for (size_t i = 0; i < receive.size(); ++i) {
        EXPECT_FALSE(receive.truncated(i));
        ASSERT_EQ(receive.peer_len(i), client.length);
        EXPECT_EQ(std::memcmp(&receive.peer(i), &client.address, client.length), 0);
        absl::Span<uint8_t> datagram = receive.data(i);
        uint32_t seq;
        ASSERT_GE(datagram.size(), sizeof(seq));
        std::memcpy(&seq, datagram.data(), sizeof(seq));
        ASSERT_LT(seq, kDatagrams);
        EXPECT_FALSE(seen[seq]) << seq;
        seen[seq] = true;
        ASSERT_EQ(datagram.size(), LengthOf(seq));
        for (size_t b = sizeof(seq); b < datagram.size(); ++b) {
          ASSERT_EQ(datagram[b], ByteOf(seq, b)) << "datagram " << seq << " byte " << b;
        }
        ++received;
      }
    }
  };

  size_t flushed = 0;
  for (uint32_t seq = 0; seq < kDatagrams; ++seq) {
    absl::Span<uint8_t> buffer = send.Next();
    if (buffer.empty()) {
      EXPECT_EQ(send.size(), send.capacity());
      const SendBatch::FlushResult result = send.Flush(client.fd.get());
      EXPECT_EQ(result.sent, send.capacity());
      EXPECT_EQ(result.dropped, 0u);
      EXPECT_EQ(send.size(), 0u);
      flushed += result.sent;
      drain(flushed);
      buffer = send.Next();
    }
    ASSERT_EQ(buffer.size(), 2048u);
    Fill(buffer, seq);
    send.Commit(LengthOf(seq), reinterpret_cast<const sockaddr*>(&server.address), server.length);
  }
  const SendBatch::FlushResult last = send.Flush(client.fd.get());
  EXPECT_EQ(last.sent, kDatagrams % send.capacity());
  EXPECT_EQ(last.last_error, 0);
  drain(kDatagrams);

  EXPECT_EQ(received, kDatagrams);
  EXPECT_EQ(largest_receive, receive.capacity()) << "16 datagrams were pending: one full batch";
}

INSTANTIATE_TEST_SUITE_P(Families, RoundTripTest, ::testing::Values(AF_INET, AF_INET6),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::string(info.param == AF_INET ? "Ipv4" : "Ipv6");
                         });

TEST(RecvBatchTest, FlagsDatagramsBiggerThanItsBuffers) {
  BoundSocket server = BindLoopback(AF_INET);
  BoundSocket client = BindLoopback(AF_INET);
  RecvBatch receive(4, 64);
  const std::vector<size_t> lengths = {100, 64, 10};
  for (const size_t length : lengths) {
    std::vector<uint8_t> datagram(length);
    for (size_t i = 0; i < length; ++i) datagram[i] = static_cast<uint8_t>(i);
    ASSERT_EQ(sendto(client.fd.get(), datagram.data(), length, 0,
                     reinterpret_cast<const sockaddr*>(&server.address), server.length),
              static_cast<ssize_t>(length));
  }
  size_t index = 0;
  std::vector<bool> truncated;
  std::vector<size_t> sizes;
  while (index < lengths.size() && WaitReadable(server.fd.get())) {
    ASSERT_GE(receive.Receive(server.fd.get()), 0);
    for (size_t i = 0; i < receive.size(); ++i, ++index) {
      truncated.push_back(receive.truncated(i));
      sizes.push_back(receive.data(i).size());
      for (size_t b = 0; b < receive.data(i).size(); ++b) {
        ASSERT_EQ(receive.data(i)[b], static_cast<uint8_t>(b));
      }
    }
  }
  EXPECT_EQ(truncated, (std::vector<bool>{true, false, false}));
  EXPECT_EQ(sizes, (std::vector<size_t>{64, 64, 10}));
}

TEST(RecvBatchTest, ReceiveReportsNothingPendingAsZeroAndErrorsAsNegativeErrno) {
  BoundSocket server = BindLoopback(AF_INET);
  RecvBatch receive(4, 64);
  EXPECT_EQ(receive.Receive(server.fd.get()), 0);
  EXPECT_EQ(receive.size(), 0u);
  UniqueFd closed(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  const int closed_number = closed.get();
  closed.reset();
  EXPECT_EQ(receive.Receive(closed_number), -EBADF);
  EXPECT_EQ(receive.size(), 0u);
}

TEST(SendBatchTest, NextHandsOutTheSameBufferUntilCommitAndNothingWhenFull) {
  BoundSocket server = BindLoopback(AF_INET);
  BoundSocket client = BindLoopback(AF_INET);
  SendBatch send(2, 32);
  const auto* to = reinterpret_cast<const sockaddr*>(&server.address);

  absl::Span<uint8_t> abandoned = send.Next();
  ASSERT_EQ(abandoned.size(), 32u);
  abandoned[0] = 'A';
  absl::Span<uint8_t> first = send.Next();
  EXPECT_EQ(first.data(), abandoned.data()) << "an uncommitted buffer is handed out again";
  first[0] = 'B';
  send.Commit(1, to, server.length);
  absl::Span<uint8_t> second = send.Next();
  EXPECT_NE(second.data(), first.data());
  second[0] = 'C';
  send.Commit(1, to, server.length);
  EXPECT_EQ(send.size(), 2u);
  EXPECT_TRUE(send.Next().empty());

  const SendBatch::FlushResult result = send.Flush(client.fd.get());
  EXPECT_EQ(result.sent, 2u);
  EXPECT_EQ(result.dropped, 0u);
  EXPECT_EQ(send.size(), 0u);
  EXPECT_EQ(send.Next().size(), 32u);

  std::string got;
  RecvBatch receive(4, 32);
  while (got.size() < 2 && WaitReadable(server.fd.get())) {
    ASSERT_GE(receive.Receive(server.fd.get()), 0);
    for (size_t i = 0; i < receive.size(); ++i) {
      ASSERT_EQ(receive.data(i).size(), 1u);
      got.push_back(static_cast<char>(receive.data(i)[0]));
    }
  }
  EXPECT_EQ(got, "BC");
}

TEST(SendBatchTest, FlushToAClosedPeerCountsDropsInsteadOfFailing) {
  BoundSocket client = BindLoopback(AF_INET);
  {
    BoundSocket gone = BindLoopback(AF_INET);
    ASSERT_EQ(
        connect(client.fd.get(), reinterpret_cast<const sockaddr*>(&gone.address), gone.length), 0);
  }
  // The first datagram draws an ICMP port unreachable, which leaves ECONNREFUSED pending on the
  // connected socket.
  const char probe = 'x';
  ASSERT_EQ(send(client.fd.get(), &probe, 1, 0), 1);
  pollfd p{client.fd.get(), POLLERR, 0};
  ASSERT_EQ(poll(&p, 1, kPatienceMs), 1);

  SendBatch send(8, 64);
  constexpr size_t kDatagrams = 5;
  for (size_t i = 0; i < kDatagrams; ++i) {
    absl::Span<uint8_t> buffer = send.Next();
    buffer[0] = static_cast<uint8_t>(i);
    send.Commit(1, nullptr, 0);
  }
  const SendBatch::FlushResult result = send.Flush(client.fd.get());
  // The pending error costs the first datagram; the error is then cleared, so the flush goes on
  // and the second goes out (each one sent may leave a new error for a later one).
  EXPECT_GE(result.dropped, 1u);
  EXPECT_GE(result.sent, 1u);
  EXPECT_EQ(result.sent + result.dropped, kDatagrams);
  EXPECT_EQ(result.last_error, ECONNREFUSED);
  EXPECT_EQ(send.size(), 0u);
}

TEST(SendBatchTest, AFullSocketBufferStopsTheFlushAndTheRestAreDropped) {
  // A Unix datagram pair: unlike UDP on loopback, whose datagrams leave the sender's buffer at
  // once, its datagrams count against the sender's buffer until the receiver reads them, so a
  // small SO_SNDBUF fills up and the sender sees EAGAIN.
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair), 0);
  UniqueFd sender(pair[0]);
  UniqueFd receiver(pair[1]);
  const int buffer_bytes = 16 * 1024;  // Far less than 64 datagrams of 1 KiB.
  ASSERT_EQ(setsockopt(sender.get(), SOL_SOCKET, SO_SNDBUF, &buffer_bytes, sizeof(buffer_bytes)),
            0);
  SendBatch send(64, 1024);
  while (!send.Next().empty()) send.Commit(1024, nullptr, 0);
  const SendBatch::FlushResult result = send.Flush(sender.get());
  EXPECT_GT(result.sent, 0u);
  EXPECT_GT(result.dropped, 0u);
  EXPECT_EQ(result.sent + result.dropped, 64u);
  EXPECT_EQ(result.last_error, EAGAIN);
  EXPECT_EQ(send.size(), 0u);
}

TEST(DatagramBatchAllocationTest, ReceiveNextCommitAndFlushDoNotAllocate) {
  BoundSocket server = BindLoopback(AF_INET);
  BoundSocket client = BindLoopback(AF_INET);
  SendBatch send(16, 256);
  RecvBatch receive(16, 128);
  const auto* to = reinterpret_cast<const sockaddr*>(&server.address);

  const long before = test::AllocationCount();
  size_t received = 0;
  size_t truncated = 0;
  for (int round = 0; round < 10; ++round) {
    for (int i = 0; i < 16; ++i) {
      absl::Span<uint8_t> buffer = send.Next();
      std::memset(buffer.data(), round, buffer.size());
      // Every other datagram is too big for the receive buffers.
      send.Commit(i % 2 == 0 ? 64 : 200, to, server.length);
    }
    const SendBatch::FlushResult result = send.Flush(client.fd.get());
    ASSERT_EQ(result.sent, 16u);
    size_t this_round = 0;
    while (this_round < 16 && WaitReadable(server.fd.get())) {
      ASSERT_GE(receive.Receive(server.fd.get()), 0);
      for (size_t i = 0; i < receive.size(); ++i) {
        ASSERT_EQ(receive.data(i)[0], round);
        ASSERT_EQ(receive.peer_len(i), client.length);
        if (receive.truncated(i)) ++truncated;
      }
      this_round += receive.size();
    }
    received += this_round;
  }
  const long after = test::AllocationCount();
  EXPECT_EQ(received, 160u);
  EXPECT_EQ(truncated, 80u);
  EXPECT_EQ(after, before);
}

TEST(DatagramBatchAllocationTest, TheCounterSeesAllocations) {
  // Without this, the zero above could mean the counter is not linked in.
  const long before = test::AllocationCount();
  auto batch = std::make_unique<RecvBatch>(4, 64);
  EXPECT_GT(test::AllocationCount(), before);
}

}  // namespace
}  // namespace ferry::dataplane
