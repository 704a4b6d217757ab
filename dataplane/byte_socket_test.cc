#include "dataplane/byte_socket.h"

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/mutex_lock.h"
#include "common/unique_fd.h"
#include "dataplane/buffer_pool.h"
#include "dataplane/stream_conn.h"
#include "dataplane/testing/loop_thread.h"
#include "dataplane/testing/loopback_tcp.h"
#include "gtest/gtest.h"

namespace ferry::dataplane {
namespace {

using test::LoopThread;
using test::PatternBytes;

constexpr size_t kQueueLimit = 1 << 20;

// Records every callback; the test thread waits on it.
class RecordingDelegate : public ByteSocket::Delegate, public test::CallbackRecorder {
 public:
  void OnConnected(ByteSocket* /*socket*/) override {
    MutexLock lock(&mu_);
    Recorded();
    ++connected_;
  }
  void OnData(ByteSocket* socket, absl::Span<const uint8_t> data) override {
    {
      MutexLock lock(&mu_);
      Recorded();
      data_.insert(data_.end(), data.begin(), data.end());
      largest_read_ = std::max(largest_read_, data.size());
    }
    if (on_data) on_data(socket, data);
  }
  void OnReadClosed(ByteSocket* /*socket*/) override {
    MutexLock lock(&mu_);
    Recorded();
    ++read_closed_;
  }
  void OnDrained(ByteSocket* /*socket*/, size_t bytes_written) override {
    MutexLock lock(&mu_);
    Recorded();
    EXPECT_GT(bytes_written, 0u);
    drained_ += bytes_written;
  }
  void OnClosed(ByteSocket* /*socket*/, const absl::Status& why) override {
    MutexLock lock(&mu_);
    Recorded();
    closes_.push_back(why);
  }

  bool WaitForData(size_t n) {
    return WaitFor([&] { return data_.size() >= n; });
  }
  bool WaitForReadClosed() {
    return WaitFor([&] { return read_closed_ > 0; });
  }
  bool WaitForDrained(size_t n) {
    return WaitFor([&] { return drained_ >= n; });
  }
  bool WaitForClose() {
    return WaitFor([&] { return !closes_.empty(); });
  }
  bool WaitForConnected() {
    return WaitFor([&] { return connected_ > 0 || !closes_.empty(); }) && Snapshot().connected > 0;
  }

  struct State {
    int connected = 0;
    std::vector<uint8_t> data;
    size_t largest_read = 0;
    int read_closed = 0;
    size_t drained = 0;
    std::vector<absl::Status> closes;
  };
  State Snapshot() {
    MutexLock lock(&mu_);
    return {connected_, data_, largest_read_, read_closed_, drained_, closes_};
  }

  // Optional reaction, run on the loop thread after recording.
  std::function<void(ByteSocket*, absl::Span<const uint8_t>)> on_data;

 private:
  int connected_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<uint8_t> data_ ABSL_GUARDED_BY(mu_);
  size_t largest_read_ ABSL_GUARDED_BY(mu_) = 0;
  int read_closed_ ABSL_GUARDED_BY(mu_) = 0;
  size_t drained_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<absl::Status> closes_ ABSL_GUARDED_BY(mu_);
};

// A ByteSocket on a LoopThread with a raw blocking socket as its peer.
class ByteSocketTest : public ::testing::Test {
 protected:
  void TearDown() override {
    loop_thread_.RunSync([&] { socket_.reset(); });
  }

  // `kernel_buffer`, when positive, caps the ByteSocket's send buffer and the peer's receive
  // buffer, so that the kernel holds little of what is written.
  void StartConnected(size_t max_queued_bytes = kQueueLimit, absl::Span<uint8_t> buffer = {},
                      int kernel_buffer = 0) {
    absl::StatusOr<test::TcpPair> pair = test::ConnectedTcpPair();
    ASSERT_TRUE(pair.ok()) << pair.status();
    peer_ = std::move(pair->client);
    server_fd_ = pair->server.get();
    if (kernel_buffer > 0) {
      ASSERT_EQ(setsockopt(server_fd_, SOL_SOCKET, SO_SNDBUF, &kernel_buffer, sizeof(int)), 0);
      ASSERT_EQ(setsockopt(peer_.get(), SOL_SOCKET, SO_RCVBUF, &kernel_buffer, sizeof(int)), 0);
    }
    StartOn(std::move(pair->server), /*connecting=*/false, max_queued_bytes, buffer);
  }

  void StartOn(UniqueFd fd, bool connecting, size_t max_queued_bytes = kQueueLimit,
               absl::Span<uint8_t> buffer = {}) {
    absl::Status started;
    loop_thread_.RunSync([&] {
      socket_ = std::make_unique<ByteSocket>(loop_thread_.loop(), std::move(fd), connecting,
                                             &delegate_, &pool_, max_queued_bytes, buffer);
      started = socket_->Start();
    });
    ASSERT_TRUE(started.ok()) << started;
  }

  // How many rounds the loop goes through in `period` (plus the few the measuring takes).
  int CountRoundsOver(absl::Duration period) {
    int rounds = 0;
    loop_thread_.RunSync([&] { loop_thread_.loop()->SetAfterEvents([&] { ++rounds; }); });
    absl::SleepFor(period);
    loop_thread_.RunSync([&] { loop_thread_.loop()->SetAfterEvents(nullptr); });
    return rounds;
  }

  bool WriteOnLoop(absl::Span<const uint8_t> data) {
    bool written = false;
    loop_thread_.RunSync([&] { written = socket_->Write(data); });
    return written;
  }

  // Bytes waiting in the ByteSocket's kernel receive buffer.
  int PendingInKernel() {
    int pending = -1;
    loop_thread_.RunSync([&] {
      // server_fd_ is the ByteSocket's own fd; reading the count consumes nothing.
      ioctl(server_fd_, FIONREAD, &pending);
    });
    return pending;
  }

  BufferPool pool_{4096, 1200};
  LoopThread loop_thread_;
  RecordingDelegate delegate_;
  std::unique_ptr<ByteSocket> socket_;
  UniqueFd peer_;
  // The fd inside socket_, for tests that look at its kernel state.
  int server_fd_ = -1;
};

TEST_F(ByteSocketTest, BytesFlowBothWays) {
  ASSERT_NO_FATAL_FAILURE(StartConnected());
  const std::vector<uint8_t> inbound = PatternBytes(300000, 1);
  std::thread writer([&] { EXPECT_TRUE(test::WriteAll(peer_.get(), inbound).ok()); });
  ASSERT_TRUE(delegate_.WaitForData(inbound.size()));
  writer.join();
  RecordingDelegate::State state = delegate_.Snapshot();
  EXPECT_EQ(state.data, inbound);
  EXPECT_LE(state.largest_read, ByteSocket::kDefaultReadChunk);
  EXPECT_EQ(state.connected, 0) << "OnConnected is only for connecting sockets";

  const std::vector<uint8_t> outbound = PatternBytes(200000, 2);
  std::thread reader([&] {
    absl::StatusOr<std::vector<uint8_t>> got = test::ReadExactly(peer_.get(), outbound.size());
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, outbound);
  });
  for (size_t at = 0; at < outbound.size(); at += 10000) {
    EXPECT_TRUE(WriteOnLoop(absl::MakeConstSpan(outbound).subspan(at, 10000)));
  }
  reader.join();
  ASSERT_TRUE(delegate_.WaitForDrained(outbound.size()));
  EXPECT_EQ(delegate_.Snapshot().drained, outbound.size());
  EXPECT_TRUE(delegate_.Snapshot().closes.empty());
}

TEST_F(ByteSocketTest, ShutdownWriteSendsFinAfterTheQueueAndThePeerCanStillSend) {
  ASSERT_NO_FATAL_FAILURE(
      StartConnected(/*max_queued_bytes=*/4 << 20, /*buffer=*/{}, /*kernel_buffer=*/256 << 10));
  // More than the kernel takes at once, so that FIN has to wait for the queue.
  const std::vector<uint8_t> outbound = PatternBytes(3 << 20, 3);
  size_t queued_at_shutdown = 0;
  loop_thread_.RunSync([&] {
    EXPECT_TRUE(socket_->Write(outbound));
    socket_->ShutdownWrite();
    queued_at_shutdown = socket_->queued_bytes();
    EXPECT_FALSE(socket_->Write(PatternBytes(1, 0))) << "Write after ShutdownWrite";
  });
  ASSERT_GT(queued_at_shutdown, 0u) << "the kernel took everything; FIN could not wait";
  // The peer sees every byte, then EOF.
  absl::StatusOr<std::vector<uint8_t>> got = test::ReadToEof(peer_.get());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, outbound);
  ASSERT_TRUE(delegate_.WaitForDrained(outbound.size()));

  // The peer can still send, and its FIN arrives as OnReadClosed.
  const std::vector<uint8_t> reply = PatternBytes(5000, 4);
  ASSERT_TRUE(test::WriteAll(peer_.get(), reply).ok());
  ASSERT_EQ(shutdown(peer_.get(), SHUT_WR), 0);
  ASSERT_TRUE(delegate_.WaitForReadClosed());
  loop_thread_.WaitForRound();
  RecordingDelegate::State state = delegate_.Snapshot();
  EXPECT_EQ(state.data, reply);
  EXPECT_EQ(state.read_closed, 1);
  EXPECT_EQ(state.drained, outbound.size());
  // Both directions ended cleanly: nothing is reported closed until the owner closes it.
  EXPECT_TRUE(state.closes.empty());
  // And the standing hang-up (epoll reports it whatever the registered events) does not spin the
  // loop meanwhile: an idle loop goes round only for the posted calls.
  EXPECT_LT(CountRoundsOver(absl::Milliseconds(100)), 10);
  loop_thread_.RunSync([&] { socket_->Close(); });
  ASSERT_EQ(delegate_.Snapshot().closes.size(), 1u);
  EXPECT_EQ(delegate_.Snapshot().closes[0].code(), absl::StatusCode::kCancelled);
}

TEST_F(ByteSocketTest, PeerHalfCloseFirstThenTheSocketStillWrites) {
  ASSERT_NO_FATAL_FAILURE(StartConnected());
  const std::vector<uint8_t> request = PatternBytes(1000, 5);
  ASSERT_TRUE(test::WriteAll(peer_.get(), request).ok());
  ASSERT_EQ(shutdown(peer_.get(), SHUT_WR), 0);
  ASSERT_TRUE(delegate_.WaitForReadClosed());
  EXPECT_EQ(delegate_.Snapshot().data, request);

  const std::vector<uint8_t> response = PatternBytes(70000, 6);
  EXPECT_TRUE(WriteOnLoop(response));
  loop_thread_.RunSync([&] { socket_->ShutdownWrite(); });
  absl::StatusOr<std::vector<uint8_t>> got = test::ReadToEof(peer_.get());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, response);
  ASSERT_TRUE(delegate_.WaitForDrained(response.size()));
  loop_thread_.WaitForRound();
  EXPECT_TRUE(delegate_.Snapshot().closes.empty());
  EXPECT_EQ(delegate_.Snapshot().read_closed, 1);
}

TEST_F(ByteSocketTest, PausedReadingDeliversNothingUntilResumed) {
  ASSERT_NO_FATAL_FAILURE(StartConnected());
  loop_thread_.RunSync([&] { socket_->PauseReading(); });

  const std::vector<uint8_t> bytes = PatternBytes(20000, 7);
  ASSERT_TRUE(test::WriteAll(peer_.get(), bytes).ok());
  ASSERT_EQ(shutdown(peer_.get(), SHUT_WR), 0);
  // Wait until the bytes sit in the ByteSocket's receive buffer, then give the loop rounds.
  for (int i = 0; i < 1000 && PendingInKernel() < static_cast<int>(bytes.size()); ++i) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_EQ(PendingInKernel(), static_cast<int>(bytes.size()));
  loop_thread_.WaitForRound();
  RecordingDelegate::State state = delegate_.Snapshot();
  EXPECT_TRUE(state.data.empty());
  EXPECT_EQ(state.read_closed, 0);

  loop_thread_.RunSync([&] { socket_->ResumeReading(); });
  ASSERT_TRUE(delegate_.WaitForReadClosed());
  EXPECT_EQ(delegate_.Snapshot().data, bytes);
}

TEST_F(ByteSocketTest, PausingInsideOnDataStopsFurtherReads) {
  ASSERT_NO_FATAL_FAILURE(StartConnected());
  delegate_.on_data = [](ByteSocket* socket, absl::Span<const uint8_t>) { socket->PauseReading(); };
  const std::vector<uint8_t> bytes = PatternBytes(100000, 8);
  ASSERT_TRUE(test::WriteAll(peer_.get(), bytes).ok());
  ASSERT_TRUE(delegate_.WaitForData(1));
  loop_thread_.WaitForRound();
  const size_t first = delegate_.Snapshot().data.size();
  EXPECT_LE(first, ByteSocket::kDefaultReadChunk);
  loop_thread_.WaitForRound();
  EXPECT_EQ(delegate_.Snapshot().data.size(), first) << "read on while paused";

  // Resume after each read: everything arrives, one read at a time.
  delegate_.on_data = nullptr;
  loop_thread_.RunSync([&] { socket_->ResumeReading(); });
  ASSERT_TRUE(delegate_.WaitForData(bytes.size()));
  EXPECT_EQ(delegate_.Snapshot().data, bytes);
}

TEST_F(ByteSocketTest, WriteIsRefusedOverTheLimitAndDrainingIsReported) {
  constexpr size_t kLimit = 64 * 1024;
  ASSERT_NO_FATAL_FAILURE(StartConnected(kLimit));
  // The peer reads nothing for now: fill the kernel buffers, then the queue.
  std::vector<uint8_t> accepted;
  bool refused = false;
  loop_thread_.RunSync([&] {
    for (int i = 0; i < 10000 && !refused; ++i) {
      const std::vector<uint8_t> piece = PatternBytes(8192, static_cast<uint8_t>(i));
      if (socket_->Write(piece)) {
        accepted.insert(accepted.end(), piece.begin(), piece.end());
      } else {
        refused = true;
        EXPECT_LE(socket_->queued_bytes(), kLimit);
        EXPECT_GT(socket_->queued_bytes() + piece.size(), kLimit);
      }
    }
  });
  ASSERT_TRUE(refused) << "the queue never filled";

  absl::StatusOr<std::vector<uint8_t>> got = test::ReadExactly(peer_.get(), accepted.size());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, accepted);
  ASSERT_TRUE(delegate_.WaitForDrained(accepted.size()));
  loop_thread_.WaitForRound();
  EXPECT_EQ(delegate_.Snapshot().drained, accepted.size());
  size_t queued = 1;
  loop_thread_.RunSync([&] { queued = socket_->queued_bytes(); });
  EXPECT_EQ(queued, 0u);
}

TEST_F(ByteSocketTest, PoolExhaustionRefusesWrite) {
  BufferPool tiny(/*chunk_size=*/1024, /*chunk_count=*/2);
  absl::StatusOr<test::TcpPair> pair = test::ConnectedTcpPair();
  ASSERT_TRUE(pair.ok()) << pair.status();
  peer_ = std::move(pair->client);
  absl::Status started;
  bool big_refused = false;
  bool small_taken = false;
  loop_thread_.RunSync([&] {
    socket_ = std::make_unique<ByteSocket>(loop_thread_.loop(), std::move(pair->server), false,
                                           &delegate_, &tiny, kQueueLimit);
    started = socket_->Start();
    socket_->PauseReading();
    // Connecting is over, so the first write goes to the kernel: fill it first.
    for (int i = 0; i < 100000 && socket_->queued_bytes() == 0; ++i) {
      ASSERT_TRUE(socket_->Write(PatternBytes(1000, 0)));
    }
    big_refused = !socket_->Write(PatternBytes(4096, 0));  // needs 4 chunks; 2 exist
    small_taken = socket_->Write(PatternBytes(100, 0));
  });
  ASSERT_TRUE(started.ok()) << started;
  EXPECT_TRUE(big_refused);
  EXPECT_TRUE(small_taken);
  loop_thread_.RunSync([&] { socket_.reset(); });
  EXPECT_EQ(tiny.available(), 2u);
}

TEST_F(ByteSocketTest, ConnectingSocketReportsOnConnectedAndSendsWhatWasQueued) {
  absl::StatusOr<test::LoopbackListener> listener = test::ListenOnLoopback();
  ASSERT_TRUE(listener.ok()) << listener.status();
  absl::StatusOr<UniqueFd> fd = ConnectTcp(listener->address());
  ASSERT_TRUE(fd.ok()) << fd.status();
  const std::vector<uint8_t> early = PatternBytes(5000, 9);
  absl::Status started;
  loop_thread_.RunSync([&] {
    socket_ = std::make_unique<ByteSocket>(loop_thread_.loop(), *std::move(fd), true, &delegate_,
                                           &pool_, kQueueLimit);
    EXPECT_TRUE(socket_->Write(early));
    socket_->ShutdownWrite();  // FIN after the queued bytes, once connected
    started = socket_->Start();
  });
  ASSERT_TRUE(started.ok()) << started;
  absl::StatusOr<UniqueFd> accepted = test::AcceptOne(*listener);
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  ASSERT_TRUE(delegate_.WaitForConnected());
  absl::StatusOr<std::vector<uint8_t>> got = test::ReadToEof(accepted->get());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, early);
  EXPECT_EQ(delegate_.Snapshot().connected, 1);
}

TEST_F(ByteSocketTest, ConnectToAClosedPortReportsOnClosedWithTheError) {
  absl::StatusOr<uint16_t> port = test::ClosedLoopbackPort();
  ASSERT_TRUE(port.ok()) << port.status();
  absl::StatusOr<UniqueFd> fd = ConnectTcp(absl::StrCat("127.0.0.1:", *port));
  ASSERT_TRUE(fd.ok()) << fd.status();
  ASSERT_NO_FATAL_FAILURE(StartOn(*std::move(fd), /*connecting=*/true));
  ASSERT_TRUE(delegate_.WaitForClose());
  RecordingDelegate::State state = delegate_.Snapshot();
  EXPECT_EQ(state.connected, 0);
  ASSERT_EQ(state.closes.size(), 1u);
  EXPECT_EQ(state.closes[0].code(), absl::StatusCode::kUnavailable) << state.closes[0];
  EXPECT_NE(state.closes[0].message().find("Connection refused"), absl::string_view::npos)
      << state.closes[0];
}

TEST_F(ByteSocketTest, PeerResetIsReportedAsAnError) {
  ASSERT_NO_FATAL_FAILURE(StartConnected());
  // SO_LINGER with a zero timeout: close() sends RST instead of FIN.
  linger reset = {1, 0};
  ASSERT_EQ(setsockopt(peer_.get(), SOL_SOCKET, SO_LINGER, &reset, sizeof(reset)), 0);
  peer_.reset();
  ASSERT_TRUE(delegate_.WaitForClose());
  RecordingDelegate::State state = delegate_.Snapshot();
  ASSERT_EQ(state.closes.size(), 1u);
  EXPECT_FALSE(state.closes[0].ok());
  EXPECT_NE(state.closes[0].code(), absl::StatusCode::kCancelled) << state.closes[0];
  EXPECT_EQ(state.read_closed, 0);
}

TEST_F(ByteSocketTest, PeerResetWhilePausedIsReportedAsAnError) {
  ASSERT_NO_FATAL_FAILURE(StartConnected());
  loop_thread_.RunSync([&] { socket_->PauseReading(); });
  linger reset = {1, 0};
  ASSERT_EQ(setsockopt(peer_.get(), SOL_SOCKET, SO_LINGER, &reset, sizeof(reset)), 0);
  peer_.reset();
  ASSERT_TRUE(delegate_.WaitForClose());
  ASSERT_EQ(delegate_.Snapshot().closes.size(), 1u);
  EXPECT_NE(delegate_.Snapshot().closes[0].code(), absl::StatusCode::kCancelled);
}

TEST_F(ByteSocketTest, CloseReportsCancelledOnce) {
  ASSERT_NO_FATAL_FAILURE(StartConnected());
  loop_thread_.RunSync([&] {
    socket_->Close();
    socket_->Close();
    EXPECT_FALSE(socket_->Write(PatternBytes(10, 0)));
    EXPECT_TRUE(socket_->closed());
  });
  loop_thread_.WaitForRound();
  ASSERT_EQ(delegate_.Snapshot().closes.size(), 1u);
  EXPECT_EQ(delegate_.Snapshot().closes[0].code(), absl::StatusCode::kCancelled);
  absl::StatusOr<std::vector<uint8_t>> rest = test::ReadToEof(peer_.get());
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_TRUE(rest->empty());
}

TEST_F(ByteSocketTest, SocketsShareOneReadBuffer) {
  std::vector<uint8_t> scratch(1000);
  ASSERT_NO_FATAL_FAILURE(StartConnected(kQueueLimit, absl::MakeSpan(scratch)));
  absl::StatusOr<test::TcpPair> other_pair = test::ConnectedTcpPair();
  ASSERT_TRUE(other_pair.ok()) << other_pair.status();
  RecordingDelegate other_delegate;
  std::unique_ptr<ByteSocket> other;
  loop_thread_.RunSync([&] {
    other =
        std::make_unique<ByteSocket>(loop_thread_.loop(), std::move(other_pair->server), false,
                                     &other_delegate, &pool_, kQueueLimit, absl::MakeSpan(scratch));
    ASSERT_TRUE(other->Start().ok());
  });
  const std::vector<uint8_t> a = PatternBytes(50000, 10);
  const std::vector<uint8_t> b = PatternBytes(50000, 11);
  std::thread wa([&] { EXPECT_TRUE(test::WriteAll(peer_.get(), a).ok()); });
  std::thread wb([&] { EXPECT_TRUE(test::WriteAll(other_pair->client.get(), b).ok()); });
  ASSERT_TRUE(delegate_.WaitForData(a.size()));
  ASSERT_TRUE(other_delegate.WaitForData(b.size()));
  wa.join();
  wb.join();
  EXPECT_EQ(delegate_.Snapshot().data, a);
  EXPECT_EQ(other_delegate.Snapshot().data, b);
  EXPECT_LE(delegate_.Snapshot().largest_read, scratch.size());
  loop_thread_.RunSync([&] { other.reset(); });
}

}  // namespace
}  // namespace ferry::dataplane
