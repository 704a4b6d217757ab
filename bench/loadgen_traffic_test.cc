#include "bench/loadgen_traffic.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"
#include "dataplane/aead.h"
#include "dataplane/big_endian.h"
#include "dataplane/frame.h"
#include "dataplane/socket_address.h"
#include "dataplane/testing/frame_builder.h"
#include "gtest/gtest.h"

namespace ferry::bench {
namespace {

using dataplane::AeadAlgorithm;
using dataplane::AeadStatus;
using dataplane::Direction;
using dataplane::DropReason;
using dataplane::FrameType;
using dataplane::HopAead;
using dataplane::HopRole;
using dataplane::MakeCounter;
using dataplane::SocketAddress;
using dataplane::test::FrameBuilder;

constexpr uint64_t kSession = 0x1122334455667788;
constexpr uint32_t kService = 7;

std::string Key(char fill) { return std::string(dataplane::kAeadKeySize, fill); }

HopAead Aead(const std::string& key, HopRole role) {
  absl::StatusOr<HopAead> aead = HopAead::Create(
      AeadAlgorithm::kAes256Gcm,
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(key.data()), key.size()), role);
  EXPECT_TRUE(aead.ok()) << aead.status();
  return *std::move(aead);
}

SocketAddress Address(const std::string& text) {
  absl::StatusOr<SocketAddress> address = dataplane::ParseSocketAddress(text);
  EXPECT_TRUE(address.ok()) << address.status();
  return address.ok() ? *address : SocketAddress{};
}

// The loopback form of a sender's local address (it binds 127.0.0.1 for a
// loopback relay, so this is the address itself).
SocketAddress Loopback(const SocketAddress& local) { return Address(local.ToString()); }

AgentSession Session(const std::string& key, const SocketAddress& relay,
                     uint64_t session_id = kSession) {
  AgentSession session;
  session.session_id = session_id;
  session.service_id = kService;
  session.key = key;
  session.relay = relay;
  return session;
}

std::vector<uint32_t> Indexes(uint32_t count) {
  std::vector<uint32_t> indexes;
  for (uint32_t i = 0; i < count; ++i) indexes.push_back(i);
  return indexes;
}

// Polls `done` every 5 ms for up to 5 s; returns its last value.
template <typename Done>
bool Eventually(Done done) {
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!done()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

// A UDP socket on 127.0.0.1 standing in for the relay.
class FakeRelay {
 public:
  FakeRelay() : fd_(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
    address_.length = sizeof(address_.storage);
    EXPECT_EQ(getsockname(fd_.get(), address_.get(), &address_.length), 0);
  }

  const SocketAddress& address() const { return address_; }

  // The next datagram within `timeout`, or nullopt.
  std::optional<std::vector<uint8_t>> Receive(absl::Duration timeout = absl::Seconds(5)) {
    pollfd p{fd_.get(), POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) <= 0) {
      return std::nullopt;
    }
    std::vector<uint8_t> buffer(dataplane::kMaxFrameSize);
    const ssize_t n = recv(fd_.get(), buffer.data(), buffer.size(), MSG_DONTWAIT);
    if (n < 0) return std::nullopt;
    buffer.resize(static_cast<size_t>(n));
    return buffer;
  }

  void SendTo(const SocketAddress& to, const std::vector<uint8_t>& frame) {
    ASSERT_EQ(sendto(fd_.get(), frame.data(), frame.size(), 0, to.get(), to.length),
              static_cast<ssize_t>(frame.size()));
  }

 private:
  UniqueFd fd_;
  SocketAddress address_;
};

// A received frame, opened.
struct Received {
  FrameType type;
  uint8_t flags;
  uint32_t flow_id;
  uint64_t counter;
  uint32_t stamped_index;
  uint64_t stamped_sequence;
};

Received Open(HopAead& aead, std::vector<uint8_t> frame) {
  dataplane::FrameResult<dataplane::FrameView> view = dataplane::DecodeFrame(frame);
  EXPECT_TRUE(view.ok());
  Received r{};
  if (!view.ok()) return r;
  EXPECT_EQ(view->header.session_id, kSession);
  EXPECT_EQ(view->header.service_id, kService);
  EXPECT_EQ(aead.Open(absl::MakeSpan(frame)), AeadStatus::kOk);
  r.type = view->header.type;
  r.flags = view->header.flags;
  r.flow_id = view->header.flow_id;
  r.counter = view->header.counter;
  if (frame.size() >= dataplane::kMinFrameSize + kStampSize) {
    r.stamped_index = dataplane::LoadBigEndian32(frame.data() + dataplane::kHeaderSize);
    r.stamped_sequence = dataplane::LoadBigEndian64(frame.data() + dataplane::kHeaderSize + 4);
  }
  return r;
}

TEST(FlowSenderTest, CreateRefusesWhatItCannotSend) {
  const SocketAddress relay = Address("127.0.0.1:9");
  struct Case {
    const char* what;
    std::vector<AgentSession> sessions;
    size_t payload;
    size_t batch;
  };
  const Case cases[] = {
      {"no session", {}, 64, 64},
      {"a 31-byte key", {Session(std::string(31, 'k'), relay)}, 64, 64},
      {"no relay address", {Session(Key('k'), SocketAddress{})}, 64, 64},
      {"a payload without room for the stamp", {Session(Key('k'), relay)}, kStampSize - 1, 64},
      {"a payload past one datagram", {Session(Key('k'), relay)}, kMaxPayloadSize + 1, 64},
      {"an empty batch", {Session(Key('k'), relay)}, 64, 0},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    absl::StatusOr<std::unique_ptr<FlowSender>> sender =
        FlowSender::Create(c.sessions, Indexes(4), c.payload, c.batch);
    EXPECT_EQ(sender.status().code(), absl::StatusCode::kInvalidArgument) << sender.status();
  }
}

TEST(FrameSinkTest, CreateAndStartRefuseBadInput) {
  EXPECT_EQ(FrameSink::Create("127.0.0.1:0", 0, 4, 64).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FrameSink::Create("127.0.0.1:0", 1, 4, kStampSize - 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<std::unique_ptr<FrameSink>> sink = FrameSink::Create("127.0.0.1:0", 1, 4, 64);
  ASSERT_TRUE(sink.ok()) << sink.status();
  EXPECT_EQ((*sink)->Start({{kSession, "short"}}).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE((*sink)->Start({{kSession, Key('k')}}).ok());
  EXPECT_EQ((*sink)->Start({{kSession, Key('k')}}).code(), absl::StatusCode::kFailedPrecondition);
}

// The sender straight to the sink, with the sink holding the agent hop's key:
// the relay's re-sealing keeps the direction (initiator to responder), so the
// sink opens the sender's frames as they are.
class SenderToSinkTest : public ::testing::TestWithParam<std::pair<size_t, int>> {};

TEST_P(SenderToSinkTest, OpensEveryFlowAndDeliversEveryFrameOnce) {
  const auto [payload, sink_threads] = GetParam();
  constexpr uint32_t kFlows = 16;
  absl::StatusOr<std::unique_ptr<FrameSink>> sink =
      FrameSink::Create("127.0.0.1:0", sink_threads, kFlows, payload);
  ASSERT_TRUE(sink.ok()) << sink.status();
  ASSERT_TRUE((*sink)->Start({{kSession, Key('k')}}).ok());
  absl::StatusOr<std::unique_ptr<FlowSender>> sender = FlowSender::Create(
      {Session(Key('k'), Address((*sink)->address()))}, Indexes(kFlows), payload, 8);
  ASSERT_TRUE(sender.ok()) << sender.status();

  FrameSink& s = **sink;
  EXPECT_EQ((*sender)->SendOpens([&](uint32_t index) { return s.delivered(index); }), kFlows);
  ASSERT_TRUE(Eventually([&] { return s.delivered_flows() == kFlows; }))
      << s.delivered_flows() << " of " << kFlows << " flows delivered";
  // Every flow is delivered now: a second round sends nothing.
  EXPECT_EQ((*sender)->SendOpens([&](uint32_t index) { return s.delivered(index); }), 0u);

  const SendTotals totals = (*sender)->Blast(absl::Now() + absl::Milliseconds(100), 2000);
  EXPECT_GT(totals.sent, 0u);
  EXPECT_EQ(totals.send_failed, 0u);
  const uint64_t expected = kFlows + totals.sent;
  ASSERT_TRUE(Eventually([&] { return s.Totals().delivered >= expected; }))
      << s.Totals().delivered << " of " << expected << " frames delivered";
  const SinkTotals sink_totals = s.Totals();
  EXPECT_EQ(sink_totals.delivered, expected);
  EXPECT_EQ(sink_totals.payload_bytes, expected * payload);
  EXPECT_EQ(sink_totals.dropped(), 0u);
}

INSTANTIATE_TEST_SUITE_P(PayloadsAndSinkThreads, SenderToSinkTest,
                         ::testing::Values(std::make_pair(kStampSize, 1), std::make_pair(64, 1),
                                           std::make_pair(1400, 1), std::make_pair(1400, 2)));

TEST(FrameSinkTest, CountsFramesItCannotAuthenticateByReason) {
  struct Case {
    const char* what;
    ConnectorHop hop;  // what the sink holds; the sender seals with Key('k') on kSession
    DropReason reason;
  };
  const Case cases[] = {
      {"another key", {kSession, Key('x')}, DropReason::kBadTag},
      {"another session", {kSession + 1, Key('k')}, DropReason::kUnknownSession},
  };
  constexpr uint32_t kFlows = 4;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    absl::StatusOr<std::unique_ptr<FrameSink>> sink =
        FrameSink::Create("127.0.0.1:0", 1, kFlows, 64);
    ASSERT_TRUE(sink.ok()) << sink.status();
    ASSERT_TRUE((*sink)->Start({c.hop}).ok());
    absl::StatusOr<std::unique_ptr<FlowSender>> sender = FlowSender::Create(
        {Session(Key('k'), Address((*sink)->address()))}, Indexes(kFlows), 64, 8);
    ASSERT_TRUE(sender.ok()) << sender.status();
    (*sender)->SendOpens([](uint32_t) { return false; });
    FrameSink& s = **sink;
    ASSERT_TRUE(Eventually([&] { return s.Totals().dropped() >= kFlows; }));
    const SinkTotals totals = s.Totals();
    EXPECT_EQ(totals.drops[static_cast<size_t>(c.reason)], kFlows);
    EXPECT_EQ(totals.dropped(), kFlows);
    EXPECT_EQ(totals.delivered, 0u);
    EXPECT_EQ(s.delivered_flows(), 0u);
  }
}

TEST(FrameSinkTest, CountsAReplayedFrameOnceAsDeliveredThenAsReplayed) {
  absl::StatusOr<std::unique_ptr<FrameSink>> sink = FrameSink::Create("127.0.0.1:0", 1, 4, 64);
  ASSERT_TRUE(sink.ok()) << sink.status();
  ASSERT_TRUE((*sink)->Start({{kSession, Key('k')}}).ok());
  HopAead aead = Aead(Key('k'), HopRole::kInitiator);
  const std::vector<uint8_t> frame = FrameBuilder()
                                         .SessionId(kSession)
                                         .ServiceId(kService)
                                         .FlowId(3)
                                         .Counter(MakeCounter(Direction::kInitiatorToResponder, 9))
                                         .PayloadOfSize(64)
                                         .BuildSealed(aead);
  FakeRelay relay;
  const SocketAddress to = Address((*sink)->address());
  relay.SendTo(to, frame);
  relay.SendTo(to, frame);
  FrameSink& s = **sink;
  ASSERT_TRUE(Eventually([&] { return s.Totals().delivered + s.Totals().dropped() >= 2; }));
  const SinkTotals totals = s.Totals();
  EXPECT_EQ(totals.delivered, 1u);
  EXPECT_EQ(totals.drops[static_cast<size_t>(DropReason::kReplayed)], 1u);
  EXPECT_EQ(totals.dropped(), 1u);
}

// A FlowSender whose relay is a FakeRelay holding the same session key.
class FlowSenderToFakeRelayTest : public ::testing::Test {
 protected:
  void MakeSender(uint32_t flows, size_t batch) {
    absl::StatusOr<std::unique_ptr<FlowSender>> sender =
        FlowSender::Create({Session(Key('k'), relay_.address())}, Indexes(flows), 64, batch);
    ASSERT_TRUE(sender.ok()) << sender.status();
    sender_ = *std::move(sender);
  }

  // A frame the relay sends back on kSession, sealed by `aead` (a responder).
  static std::vector<uint8_t> Answer(HopAead& aead, FrameType type, uint32_t flow_id,
                                     uint64_t sequence) {
    return FrameBuilder()
        .Type(type)
        .SessionId(kSession)
        .ServiceId(kService)
        .FlowId(flow_id)
        .Counter(MakeCounter(Direction::kResponderToInitiator, sequence))
        .BuildSealed(aead);
  }

  FakeRelay relay_;
  HopAead relay_aead_ = Aead(Key('k'), HopRole::kResponder);
  HopAead wrong_aead_ = Aead(Key('x'), HopRole::kResponder);
  std::unique_ptr<FlowSender> sender_;
};

TEST_F(FlowSenderToFakeRelayTest, FramesCarryFlowIdsStampsAndIncreasingCounters) {
  constexpr uint32_t kFlows = 3;
  ASSERT_NO_FATAL_FAILURE(MakeSender(kFlows, 4));
  EXPECT_EQ(sender_->SendOpens([](uint32_t) { return false; }), kFlows);
  for (uint32_t i = 0; i < kFlows; ++i) {
    std::optional<std::vector<uint8_t>> frame = relay_.Receive();
    ASSERT_TRUE(frame.has_value());
    const Received r = Open(relay_aead_, *frame);
    EXPECT_EQ(r.type, FrameType::kData);
    EXPECT_EQ(r.flags, dataplane::kFlagOpen);
    EXPECT_EQ(r.flow_id, i + 1);
    EXPECT_EQ(r.stamped_index, i);
    EXPECT_EQ(r.stamped_sequence, 1u);
    EXPECT_EQ(r.counter, MakeCounter(Direction::kInitiatorToResponder, 1));
  }
  const SendTotals totals = sender_->Blast(absl::Now() + absl::Milliseconds(50), 200);
  std::map<uint32_t, uint64_t> last_sequence;
  for (uint64_t n = 0; n < totals.sent; ++n) {
    std::optional<std::vector<uint8_t>> frame = relay_.Receive();
    ASSERT_TRUE(frame.has_value()) << "frame " << n << " of " << totals.sent;
    const Received r = Open(relay_aead_, *frame);
    EXPECT_EQ(r.flags, 0) << "flow " << r.flow_id << " was opened again";
    EXPECT_EQ(r.flow_id, r.stamped_index + 1);
    EXPECT_EQ(r.counter, MakeCounter(Direction::kInitiatorToResponder, r.stamped_sequence));
    uint64_t& last = last_sequence[r.flow_id];
    EXPECT_EQ(r.stamped_sequence, (last == 0 ? 1 : last) + 1) << "flow " << r.flow_id;
    last = r.stamped_sequence;
  }
}

TEST_F(FlowSenderToFakeRelayTest, RateLimitNeverSendsAheadOfTheRate) {
  ASSERT_NO_FATAL_FAILURE(MakeSender(8, 64));
  constexpr double kRate = 1000;
  const absl::Time start = absl::Now();
  const SendTotals totals = sender_->Blast(start + absl::Milliseconds(100), kRate);
  const double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
  EXPECT_GT(totals.sent, 0u);
  EXPECT_LE(static_cast<double>(totals.sent), kRate * elapsed + 1);
}

TEST_F(FlowSenderToFakeRelayTest, ProbeAckMarksTheSessionAnswered) {
  ASSERT_NO_FATAL_FAILURE(MakeSender(1, 4));
  sender_->SendProbes();
  std::optional<std::vector<uint8_t>> probe = relay_.Receive();
  ASSERT_TRUE(probe.has_value());
  const Received r = Open(relay_aead_, *probe);
  EXPECT_EQ(r.type, FrameType::kProbe);
  EXPECT_EQ(r.flow_id, 0u);
  EXPECT_FALSE(sender_->probe_answered(0));

  const SocketAddress sender_address = Loopback(sender_->local_address());
  // An answer under another key does not count.
  relay_.SendTo(sender_address, Answer(wrong_aead_, FrameType::kProbeAck, 0, 1));
  absl::SleepFor(absl::Milliseconds(50));
  sender_->ReceiveReturns();
  EXPECT_FALSE(sender_->probe_answered(0));
  relay_.SendTo(sender_address, Answer(relay_aead_, FrameType::kProbeAck, 0, 2));
  EXPECT_TRUE(Eventually([&] {
    sender_->ReceiveReturns();
    return sender_->probe_answered(0);
  }));
}

TEST_F(FlowSenderToFakeRelayTest, AuthenticCloseFromTheRelayOpensTheFlowAgain) {
  ASSERT_NO_FATAL_FAILURE(MakeSender(3, 4));
  std::map<uint32_t, int> opens;  // flow id -> frames with kFlagOpen
  auto drain = [&] {
    while (std::optional<std::vector<uint8_t>> frame = relay_.Receive(absl::Milliseconds(50))) {
      const Received r = Open(relay_aead_, *frame);
      if (r.flags & dataplane::kFlagOpen) ++opens[r.flow_id];
    }
  };
  sender_->SendOpens([](uint32_t) { return false; });
  drain();
  EXPECT_EQ(opens, (std::map<uint32_t, int>{{1, 1}, {2, 1}, {3, 1}}));

  const SocketAddress sender_address = Loopback(sender_->local_address());
  relay_.SendTo(sender_address, Answer(relay_aead_, FrameType::kClose, 2, 1));
  relay_.SendTo(sender_address, Answer(wrong_aead_, FrameType::kClose, 3, 2));  // forged
  SendTotals totals;
  ASSERT_TRUE(Eventually([&] {
    const SendTotals t = sender_->Blast(absl::Now() + absl::Milliseconds(20), 500);
    totals.closes += t.closes;
    totals.reopened += t.reopened;
    return totals.reopened > 0;
  }));
  drain();
  EXPECT_EQ(totals.closes, 1u);
  EXPECT_EQ(totals.reopened, 1u);
  EXPECT_EQ(opens, (std::map<uint32_t, int>{{1, 1}, {2, 2}, {3, 1}}));
}

}  // namespace
}  // namespace ferry::bench
