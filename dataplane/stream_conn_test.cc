#include "dataplane/stream_conn.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/mutex_lock.h"
#include "common/unique_fd.h"
#include "dataplane/big_endian.h"
#include "dataplane/buffer_pool.h"
#include "dataplane/frame.h"
#include "dataplane/testing/loop_thread.h"
#include "dataplane/testing/loopback_tcp.h"
#include "gtest/gtest.h"

namespace ferry::dataplane {
namespace {

using test::LoopThread;
using test::PatternBytes;

constexpr size_t kLargeQueue = 4 * (StreamConn::kLengthPrefixSize + kMaxFrameSize);

// Records every callback; the test thread waits on it.
class RecordingDelegate : public StreamConn::Delegate, public test::CallbackRecorder {
 public:
  void OnFrame(StreamConn* conn, absl::Span<uint8_t> frame) override {
    {
      MutexLock lock(&mu_);
      Recorded();
      frames_.emplace_back(frame.begin(), frame.end());
    }
    if (on_frame) on_frame(conn, frame);
  }
  void OnWritable(StreamConn* conn) override {
    {
      MutexLock lock(&mu_);
      Recorded();
      ++writable_calls_;
    }
    if (on_writable) on_writable(conn);
  }
  void OnClosed(StreamConn* /*conn*/, const absl::Status& why) override {
    MutexLock lock(&mu_);
    Recorded();
    closes_.push_back(why);
  }

  bool WaitForFrames(size_t n) {
    return WaitFor([&] { return frames_.size() >= n; });
  }
  bool WaitForClose() {
    return WaitFor([&] { return !closes_.empty(); });
  }
  bool WaitForWritable() {
    return WaitFor([&] { return writable_calls_ > 0; });
  }

  std::vector<std::vector<uint8_t>> frames() {
    MutexLock lock(&mu_);
    return frames_;
  }
  size_t frame_count() {
    MutexLock lock(&mu_);
    return frames_.size();
  }
  int writable_calls() {
    MutexLock lock(&mu_);
    return writable_calls_;
  }
  std::vector<absl::Status> closes() {
    MutexLock lock(&mu_);
    return closes_;
  }

  // Optional reactions, run on the loop thread after recording.
  std::function<void(StreamConn*, absl::Span<uint8_t>)> on_frame;
  std::function<void(StreamConn*)> on_writable;

 private:
  std::vector<std::vector<uint8_t>> frames_ ABSL_GUARDED_BY(mu_);
  int writable_calls_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<absl::Status> closes_ ABSL_GUARDED_BY(mu_);
};

// The wire bytes of `frames`: each with its 2-byte big-endian length in front.
std::vector<uint8_t> Wire(const std::vector<std::vector<uint8_t>>& frames) {
  std::vector<uint8_t> wire;
  for (const std::vector<uint8_t>& frame : frames) {
    wire.push_back(static_cast<uint8_t>(frame.size() >> 8));
    wire.push_back(static_cast<uint8_t>(frame.size()));
    wire.insert(wire.end(), frame.begin(), frame.end());
  }
  return wire;
}

// Reads `count` length-prefixed frames from the blocking raw socket `fd`.
std::vector<std::vector<uint8_t>> ReadFrames(int fd, size_t count) {
  std::vector<std::vector<uint8_t>> frames;
  for (size_t i = 0; i < count; ++i) {
    absl::StatusOr<std::vector<uint8_t>> prefix = test::ReadExactly(fd, 2);
    if (!prefix.ok()) {
      ADD_FAILURE() << "frame " << i << ": " << prefix.status();
      break;
    }
    absl::StatusOr<std::vector<uint8_t>> frame =
        test::ReadExactly(fd, LoadBigEndian16(prefix->data()));
    if (!frame.ok()) {
      ADD_FAILURE() << "frame " << i << ": " << frame.status();
      break;
    }
    frames.push_back(*std::move(frame));
  }
  return frames;
}

// A StreamConn on a LoopThread with a raw blocking socket as its peer.
class StreamConnTest : public ::testing::Test {
 protected:
  void TearDown() override {
    loop_thread_.RunSync([&] { conn_.reset(); });
  }

  // Makes conn_ on one end of a fresh loopback connection; `peer_` is the other end.
  void StartConnected(size_t max_queued_bytes = kLargeQueue) {
    absl::StatusOr<test::TcpPair> pair = test::ConnectedTcpPair();
    ASSERT_TRUE(pair.ok()) << pair.status();
    peer_ = std::move(pair->client);
    StartOn(std::move(pair->server), /*connecting=*/false, max_queued_bytes);
  }

  void StartOn(UniqueFd fd, bool connecting, size_t max_queued_bytes = kLargeQueue) {
    absl::Status started;
    loop_thread_.RunSync([&] {
      conn_ = std::make_unique<StreamConn>(loop_thread_.loop(), std::move(fd), connecting,
                                           &delegate_, &pool_, max_queued_bytes);
      started = conn_->Start();
    });
    ASSERT_TRUE(started.ok()) << started;
  }

  bool SendOnLoop(absl::Span<const uint8_t> frame) {
    bool sent = false;
    loop_thread_.RunSync([&] { sent = conn_->Send(frame); });
    return sent;
  }

  BufferPool pool_{4096, 1024};
  LoopThread loop_thread_;
  RecordingDelegate delegate_;
  std::unique_ptr<StreamConn> conn_;
  UniqueFd peer_;
};

TEST_F(StreamConnTest, FramesOfEveryEdgeSizeRoundTripInBothDirections) {
  ASSERT_NO_FATAL_FAILURE(StartConnected());
  std::vector<std::vector<uint8_t>> frames;
  uint8_t seed = 0;
  for (size_t size : {kMinFrameSize, kMinFrameSize + 1, size_t{255}, size_t{256}, size_t{1500},
                      size_t{4095}, size_t{4096}, size_t{4097}, kMaxFrameSize - 1, kMaxFrameSize,
                      kMinFrameSize, kMaxFrameSize}) {
    frames.push_back(PatternBytes(size, seed++));
  }

  // Peer to StreamConn, in one write: the reader must cut the stream into frames itself.
  std::thread writer([&] { EXPECT_TRUE(test::WriteAll(peer_.get(), Wire(frames)).ok()); });
  ASSERT_TRUE(delegate_.WaitForFrames(frames.size()));
  writer.join();
  EXPECT_EQ(delegate_.frames(), frames);

  // StreamConn to peer.
  std::thread reader([&] { EXPECT_EQ(ReadFrames(peer_.get(), frames.size()), frames); });
  for (const std::vector<uint8_t>& frame : frames) EXPECT_TRUE(SendOnLoop(frame));
  reader.join();
  EXPECT_TRUE(delegate_.closes().empty());
}

TEST_F(StreamConnTest, FramesSplitAtEveryByteBoundaryAreReassembled) {
  ASSERT_NO_FATAL_FAILURE(StartConnected());
  // Two small frames back to back; every split point of their wire bytes falls once inside the
  // first length prefix, the first frame, the second prefix and the second frame.
  const std::vector<std::vector<uint8_t>> unit = {PatternBytes(kMinFrameSize, 1),
                                                  PatternBytes(kMinFrameSize + 3, 2)};
  const std::vector<uint8_t> wire = Wire(unit);
  const size_t first_end = 2 + unit[0].size();
  size_t delivered = 0;
  for (size_t split = 1; split < wire.size(); ++split) {
    ASSERT_TRUE(test::WriteAll(peer_.get(), absl::MakeConstSpan(wire).first(split)).ok());
    const size_t whole = split >= first_end ? 1 : 0;
    ASSERT_TRUE(delegate_.WaitForFrames(delivered + whole)) << "split " << split;
    loop_thread_.WaitForRound();
    ASSERT_EQ(delegate_.frame_count(), delivered + whole)
        << "split " << split << ": a frame was delivered before all of it arrived";
    ASSERT_TRUE(test::WriteAll(peer_.get(), absl::MakeConstSpan(wire).subspan(split)).ok());
    delivered += 2;
    ASSERT_TRUE(delegate_.WaitForFrames(delivered)) << "split " << split;
  }
  const std::vector<std::vector<uint8_t>> got = delegate_.frames();
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], unit[i % 2]) << "frame " << i;
  EXPECT_TRUE(delegate_.closes().empty());
}

TEST_F(StreamConnTest, LargeFramesWrittenOneByteAtATimeAreReassembled) {
  ASSERT_NO_FATAL_FAILURE(StartConnected());
  // Largest frames between small ones, so that a partial frame sits at every offset of the read
  // buffer and has to be moved to its front.
  const std::vector<std::vector<uint8_t>> frames = {
      PatternBytes(kMinFrameSize, 1), PatternBytes(kMaxFrameSize, 2),
      PatternBytes(kMinFrameSize + 7, 3), PatternBytes(kMaxFrameSize, 4), PatternBytes(1000, 5)};
  const std::vector<uint8_t> wire = Wire(frames);
  std::thread writer([&] {
    // One byte per send for the first 3000 bytes (each its own TCP segment with the StreamConn
    // reading as they come), then growing pieces.
    size_t at = 0;
    size_t piece = 1;
    while (at < wire.size()) {
      const size_t n = std::min(piece, wire.size() - at);
      ASSERT_TRUE(test::WriteAll(peer_.get(), absl::MakeConstSpan(wire).subspan(at, n)).ok());
      at += n;
      if (at > 3000) piece = piece * 2 + 1;
    }
  });
  ASSERT_TRUE(delegate_.WaitForFrames(frames.size()));
  writer.join();
  EXPECT_EQ(delegate_.frames(), frames);
}

TEST_F(StreamConnTest, SendRefusesFramesOutsideTheFrameSizeLimits) {
  ASSERT_NO_FATAL_FAILURE(StartConnected());
  EXPECT_FALSE(SendOnLoop(PatternBytes(kMinFrameSize - 1, 0)));
  EXPECT_FALSE(SendOnLoop(PatternBytes(kMaxFrameSize + 1, 0)));
  EXPECT_FALSE(SendOnLoop({}));
  size_t queued = 1;
  loop_thread_.RunSync([&] { queued = conn_->queued_bytes(); });
  EXPECT_EQ(queued, 0u);
  // The connection is still fine.
  const std::vector<uint8_t> frame = PatternBytes(kMinFrameSize, 9);
  EXPECT_TRUE(SendOnLoop(frame));
  EXPECT_EQ(ReadFrames(peer_.get(), 1), std::vector<std::vector<uint8_t>>{frame});
}

struct BadLengthCase {
  const char* name;
  uint16_t length;
};

class StreamConnBadLengthTest : public StreamConnTest,
                                public ::testing::WithParamInterface<BadLengthCase> {};

TEST_P(StreamConnBadLengthTest, ClosesWithInvalidArgumentAfterTheGoodFrames) {
  ASSERT_NO_FATAL_FAILURE(StartConnected());
  const std::vector<uint8_t> good = PatternBytes(100, 3);
  std::vector<uint8_t> wire = Wire({good});
  wire.push_back(static_cast<uint8_t>(GetParam().length >> 8));
  wire.push_back(static_cast<uint8_t>(GetParam().length));
  const std::vector<uint8_t> junk = PatternBytes(64, 4);
  wire.insert(wire.end(), junk.begin(), junk.end());
  ASSERT_TRUE(test::WriteAll(peer_.get(), wire).ok());

  ASSERT_TRUE(delegate_.WaitForClose());
  const std::vector<absl::Status> closes = delegate_.closes();
  ASSERT_EQ(closes.size(), 1u);
  EXPECT_EQ(closes[0].code(), absl::StatusCode::kInvalidArgument) << closes[0];
  EXPECT_NE(closes[0].message().find(absl::StrCat("bad frame length ", GetParam().length)),
            absl::string_view::npos)
      << closes[0];
  EXPECT_EQ(delegate_.frames(), std::vector<std::vector<uint8_t>>{good});
  // The socket is closed: the peer reads EOF (or a reset, as unread bytes were dropped).
  absl::StatusOr<std::vector<uint8_t>> rest = test::ReadToEof(peer_.get());
  if (rest.ok()) {
    EXPECT_TRUE(rest->empty());
  }
  bool closed = false;
  loop_thread_.RunSync([&] { closed = conn_->closed(); });
  EXPECT_TRUE(closed);
  EXPECT_FALSE(SendOnLoop(good));
}

INSTANTIATE_TEST_SUITE_P(
    BelowTheSmallestFrame, StreamConnBadLengthTest,
    ::testing::Values(BadLengthCase{"Zero", 0}, BadLengthCase{"One", 1},
                      BadLengthCase{"HeaderOnly", static_cast<uint16_t>(kHeaderSize)},
                      BadLengthCase{"OneShortOfTheMinimum",
                                    static_cast<uint16_t>(kMinFrameSize - 1)}),
    [](const ::testing::TestParamInfo<BadLengthCase>& info) { return info.param.name; });

TEST_F(StreamConnTest, QueueLimitRefusesSendsUntilThePeerReadsThenCallsOnWritable) {
  constexpr size_t kLimit = 256 * 1024;
  ASSERT_NO_FATAL_FAILURE(StartConnected(kLimit));
  // Fill until refused; the peer reads nothing yet.
  std::vector<std::vector<uint8_t>> sent;
  bool refused = false;
  bool over_low_water = false;
  size_t queued = 0;
  loop_thread_.RunSync([&] {
    for (int i = 0; i < 1000 && !refused; ++i) {
      std::vector<uint8_t> frame = PatternBytes(30000, static_cast<uint8_t>(i));
      if (conn_->Send(frame)) {
        sent.push_back(std::move(frame));
      } else {
        refused = true;
      }
    }
    over_low_water = conn_->over_low_water();
    queued = conn_->queued_bytes();
  });
  ASSERT_TRUE(refused) << "the queue never filled";
  EXPECT_TRUE(over_low_water);
  EXPECT_LE(queued, kLimit);
  EXPECT_GT(queued + 30002, kLimit);
  loop_thread_.WaitForRound();
  EXPECT_EQ(delegate_.writable_calls(), 0) << "OnWritable before the peer read anything";

  // The peer reads everything sent so far: the queue drains and the owner hears of it.
  std::thread reader([&] { EXPECT_EQ(ReadFrames(peer_.get(), sent.size()), sent); });
  reader.join();
  ASSERT_TRUE(delegate_.WaitForWritable());
  loop_thread_.RunSync([&] {
    EXPECT_FALSE(conn_->over_low_water());
    EXPECT_TRUE(conn_->Send(PatternBytes(30000, 0)));
  });
  EXPECT_EQ(delegate_.writable_calls(), 1);
  EXPECT_TRUE(delegate_.closes().empty());
}

TEST_F(StreamConnTest, PeerCloseAtAFrameBoundaryIsUnavailable) {
  ASSERT_NO_FATAL_FAILURE(StartConnected());
  ASSERT_TRUE(test::WriteAll(peer_.get(), Wire({PatternBytes(50, 1)})).ok());
  peer_.reset();
  ASSERT_TRUE(delegate_.WaitForClose());
  EXPECT_EQ(delegate_.frame_count(), 1u);
  ASSERT_EQ(delegate_.closes().size(), 1u);
  EXPECT_EQ(delegate_.closes()[0].code(), absl::StatusCode::kUnavailable) << delegate_.closes()[0];
}

TEST_F(StreamConnTest, PeerCloseInTheMiddleOfAFrameIsDataLoss) {
  ASSERT_NO_FATAL_FAILURE(StartConnected());
  const std::vector<uint8_t> wire = Wire({PatternBytes(50, 1), PatternBytes(500, 2)});
  ASSERT_TRUE(test::WriteAll(peer_.get(), absl::MakeConstSpan(wire).first(wire.size() - 10)).ok());
  peer_.reset();
  ASSERT_TRUE(delegate_.WaitForClose());
  EXPECT_EQ(delegate_.frame_count(), 1u);
  ASSERT_EQ(delegate_.closes().size(), 1u);
  EXPECT_EQ(delegate_.closes()[0].code(), absl::StatusCode::kDataLoss) << delegate_.closes()[0];
}

TEST_F(StreamConnTest, CloseReportsCancelledOnceAndDropsTheConnection) {
  ASSERT_NO_FATAL_FAILURE(StartConnected());
  size_t closes_inside_close = 0;
  loop_thread_.RunSync([&] {
    conn_->Close();
    closes_inside_close = delegate_.closes().size();
    conn_->Close();
    EXPECT_FALSE(conn_->Send(PatternBytes(kMinFrameSize, 0)));
  });
  EXPECT_EQ(closes_inside_close, 1u);
  loop_thread_.WaitForRound();
  ASSERT_EQ(delegate_.closes().size(), 1u);
  EXPECT_EQ(delegate_.closes()[0].code(), absl::StatusCode::kCancelled);
  absl::StatusOr<std::vector<uint8_t>> rest = test::ReadToEof(peer_.get());
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_TRUE(rest->empty());
}

TEST_F(StreamConnTest, CloseFromInsideOnFrameStopsDelivery) {
  ASSERT_NO_FATAL_FAILURE(StartConnected());
  delegate_.on_frame = [](StreamConn* conn, absl::Span<uint8_t>) { conn->Close(); };
  ASSERT_TRUE(test::WriteAll(peer_.get(), Wire({PatternBytes(50, 1), PatternBytes(60, 2)})).ok());
  ASSERT_TRUE(delegate_.WaitForClose());
  loop_thread_.WaitForRound();
  EXPECT_EQ(delegate_.frame_count(), 1u);
  EXPECT_EQ(delegate_.closes().size(), 1u);
}

TEST_F(StreamConnTest, FramesSentWhileConnectingGoOutOnceConnected) {
  absl::StatusOr<test::LoopbackListener> listener = test::ListenOnLoopback();
  ASSERT_TRUE(listener.ok()) << listener.status();
  absl::StatusOr<UniqueFd> fd = ConnectTcp(listener->address());
  ASSERT_TRUE(fd.ok()) << fd.status();
  const std::vector<std::vector<uint8_t>> frames = {PatternBytes(kMinFrameSize, 1),
                                                    PatternBytes(kMaxFrameSize, 2)};
  // Queued before Start, while the connect may still be under way.
  absl::Status started;
  loop_thread_.RunSync([&] {
    conn_ = std::make_unique<StreamConn>(loop_thread_.loop(), *std::move(fd), /*connecting=*/true,
                                         &delegate_, &pool_, kLargeQueue);
    for (const auto& frame : frames) EXPECT_TRUE(conn_->Send(frame));
    started = conn_->Start();
  });
  ASSERT_TRUE(started.ok()) << started;
  absl::StatusOr<UniqueFd> accepted = test::AcceptOne(*listener);
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  EXPECT_EQ(ReadFrames(accepted->get(), frames.size()), frames);
  // And back.
  ASSERT_TRUE(test::WriteAll(accepted->get(), Wire({frames[0]})).ok());
  ASSERT_TRUE(delegate_.WaitForFrames(1));
  EXPECT_EQ(delegate_.frames()[0], frames[0]);
}

TEST_F(StreamConnTest, ConnectToAClosedPortReportsOnClosedWithTheError) {
  absl::StatusOr<uint16_t> port = test::ClosedLoopbackPort();
  ASSERT_TRUE(port.ok()) << port.status();
  absl::StatusOr<UniqueFd> fd = ConnectTcp(absl::StrCat("127.0.0.1:", *port));
  ASSERT_TRUE(fd.ok()) << fd.status();
  ASSERT_NO_FATAL_FAILURE(StartOn(*std::move(fd), /*connecting=*/true));
  ASSERT_TRUE(delegate_.WaitForClose());
  ASSERT_EQ(delegate_.closes().size(), 1u);
  const absl::Status why = delegate_.closes()[0];
  EXPECT_EQ(why.code(), absl::StatusCode::kUnavailable) << why;
  EXPECT_NE(why.message().find("Connection refused"), absl::string_view::npos) << why;
}

TEST_F(StreamConnTest, ReadsAtMostTheBudgetPerEvent) {
  // A large receive buffer on the StreamConn's side, so that more than one budget's worth waits
  // in the kernel before the connection starts reading.
  absl::StatusOr<test::LoopbackListener> listener = test::ListenOnLoopback(4 << 20);
  ASSERT_TRUE(listener.ok()) << listener.status();
  absl::StatusOr<UniqueFd> client = ConnectTcp(listener->address());
  ASSERT_TRUE(client.ok()) << client.status();
  absl::StatusOr<UniqueFd> server = test::AcceptOne(*listener);
  ASSERT_TRUE(server.ok()) << server.status();

  // The raw (non-blocking) client writes 64 KiB frames until the kernel takes no more.
  constexpr size_t kFrame = 65000;
  const std::vector<uint8_t> wire = Wire({PatternBytes(kFrame, 5)});
  size_t written_frames = 0;
  size_t partial = 0;
  while (written_frames < 200) {
    const ssize_t n = send(client->get(), wire.data() + partial, wire.size() - partial,
                           MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n <= 0) break;
    partial += static_cast<size_t>(n);
    if (partial == wire.size()) {
      ++written_frames;
      partial = 0;
    }
  }
  if (written_frames * wire.size() < 2 * StreamConn::kReadBudgetPerEvent) {
    GTEST_SKIP() << "the kernel buffered only " << written_frames
                 << " frames; cannot exceed the read budget";
  }

  // Count the frames each loop round delivers.
  std::vector<size_t> per_round;
  size_t this_round = 0;
  delegate_.on_frame = [&](StreamConn*, absl::Span<uint8_t>) { ++this_round; };
  loop_thread_.RunSync([&] {
    loop_thread_.loop()->SetAfterEvents([&] {
      if (this_round > 0) per_round.push_back(this_round);
      this_round = 0;
    });
  });
  ASSERT_NO_FATAL_FAILURE(StartOn(*std::move(server), /*connecting=*/false));
  ASSERT_TRUE(delegate_.WaitForFrames(written_frames));
  loop_thread_.WaitForRound();
  loop_thread_.RunSync([&] { loop_thread_.loop()->SetAfterEvents(nullptr); });

  const size_t most = StreamConn::kReadBudgetPerEvent / (kFrame + 2) + 1;
  ASSERT_GT(per_round.size(), 1u);
  for (size_t n : per_round) EXPECT_LE(n, most);
}

TEST_F(StreamConnTest, TwoStreamConnsEchoFrames) {
  absl::StatusOr<test::TcpPair> pair = test::ConnectedTcpPair();
  ASSERT_TRUE(pair.ok()) << pair.status();
  RecordingDelegate echo_delegate;
  std::unique_ptr<StreamConn> echo;
  echo_delegate.on_frame = [&](StreamConn* conn, absl::Span<uint8_t> frame) {
    EXPECT_TRUE(conn->Send(frame));
  };
  ASSERT_NO_FATAL_FAILURE(StartOn(std::move(pair->server), /*connecting=*/false));
  absl::Status started;
  loop_thread_.RunSync([&] {
    echo = std::make_unique<StreamConn>(loop_thread_.loop(), std::move(pair->client), false,
                                        &echo_delegate, &pool_, kLargeQueue);
    started = echo->Start();
  });
  ASSERT_TRUE(started.ok()) << started;
  std::vector<std::vector<uint8_t>> frames;
  for (int i = 0; i < 20; ++i) {
    frames.push_back(PatternBytes(kMinFrameSize + i * 3001, static_cast<uint8_t>(i)));
    EXPECT_TRUE(SendOnLoop(frames.back()));
  }
  ASSERT_TRUE(delegate_.WaitForFrames(frames.size()));
  EXPECT_EQ(delegate_.frames(), frames);
  loop_thread_.RunSync([&] { echo.reset(); });
}

TEST(ConnectTcpTest, RefusesAddressesThatAreNotIpLiteralsWithAPort) {
  for (const char* address : {"localhost:80", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536",
                              "[::1]", "::1:80", ":80", ""}) {
    absl::StatusOr<UniqueFd> fd = ConnectTcp(address);
    EXPECT_EQ(fd.status().code(), absl::StatusCode::kInvalidArgument) << address;
  }
}

TEST(ConnectTcpTest, ConnectsOverIpv6Loopback) {
  UniqueFd listener(socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(listener);
  sockaddr_in6 address = {};
  address.sin6_family = AF_INET6;
  address.sin6_addr = in6addr_loopback;
  if (bind(listener.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    GTEST_SKIP() << "no IPv6 loopback here";
  }
  ASSERT_EQ(listen(listener.get(), 1), 0);
  socklen_t length = sizeof(address);
  ASSERT_EQ(getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &length), 0);
  absl::StatusOr<UniqueFd> fd = ConnectTcp(absl::StrCat("[::1]:", ntohs(address.sin6_port)));
  ASSERT_TRUE(fd.ok()) << fd.status();
  UniqueFd accepted(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  EXPECT_TRUE(accepted);
}

}  // namespace
}  // namespace ferry::dataplane
