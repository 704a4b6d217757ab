#include "bench/loadgen_traffic.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "dataplane/big_endian.h"
#include "dataplane/frame.h"
#include "dataplane/hop_codec.h"
#include "dataplane/replay_window.h"
#include "dataplane/udp_socket_group.h"
#include "glog/logging.h"

namespace ferry::bench {
namespace {

using dataplane::AeadAlgorithm;
using dataplane::DropReason;
using dataplane::FrameHeader;
using dataplane::FrameType;
using dataplane::HopAead;
using dataplane::HopRole;

// Socket buffers of the loadgen's own sockets, as the data plane's workers use.
constexpr int kSocketBufferBytes = 4 * 1024 * 1024;
// Datagrams one recvmmsg takes.
constexpr size_t kReceiveBatch = 64;
// The relay's answers to the agent end (PROBE_ACK, CLOSE) carry no payload;
// room for a little in case one does.
constexpr size_t kReturnDatagramSize = 2048;
// A sender takes the relay's answers once every this many batches.
constexpr int kBatchesPerReturnCheck = 8;
// The fill byte after the stamp.
constexpr uint8_t kFill = 0x5A;

absl::Status CheckPayloadSize(size_t payload_size) {
  if (payload_size < kMinPayloadSize || payload_size > kMaxPayloadSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("payload size ", payload_size, " is out of range: use ", kMinPayloadSize,
                     " to ", kMaxPayloadSize, " bytes (room for the ", kStampSize,
                     "-byte stamp, and a frame that fits one UDP datagram)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<HopAead> MakeAead(const std::string& key, HopRole role, uint64_t session_id) {
  if (key.size() != dataplane::kAeadKeySize) {
    return absl::InvalidArgumentError(
        absl::StrCat("session ", absl::Hex(session_id, absl::kZeroPad16), " has a ", key.size(),
                     "-byte key; want ", dataplane::kAeadKeySize));
  }
  return HopAead::Create(
      AeadAlgorithm::kAes256Gcm,
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(key.data()), key.size()), role);
}

bool IsLoopback(const dataplane::SocketAddress& address) {
  if (address.family() == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&address.storage);
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (address.family() == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&address.storage);
    return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
  }
  return false;
}

// Where a sender binds to reach `relay`: loopback for a loopback relay (so
// nothing listens beyond this host), else the wildcard of its family.
std::string SenderListen(const dataplane::SocketAddress& relay) {
  const bool v6 = relay.family() == AF_INET6;
  if (IsLoopback(relay)) return v6 ? "[::1]:0" : "127.0.0.1:0";
  return v6 ? "[::]:0" : "0.0.0.0:0";
}

absl::StatusOr<dataplane::SocketAddress> LocalAddress(int fd) {
  dataplane::SocketAddress local;
  local.length = sizeof(local.storage);
  if (getsockname(fd, local.get(), &local.length) != 0) {
    return absl::InternalError(absl::StrCat("getsockname: ", std::strerror(errno)));
  }
  return local;
}

}  // namespace

// --- FlowSender --------------------------------------------------------------

absl::StatusOr<std::unique_ptr<FlowSender>> FlowSender::Create(std::vector<AgentSession> sessions,
                                                               std::vector<uint32_t> flow_indexes,
                                                               size_t payload_size, size_t batch) {
  if (sessions.empty()) return absl::InvalidArgumentError("a FlowSender needs a session");
  if (batch == 0) return absl::InvalidArgumentError("the send batch must hold a frame");
  if (absl::Status s = CheckPayloadSize(payload_size); !s.ok()) return s;
  std::vector<HopAead> aeads;
  for (const AgentSession& session : sessions) {
    if (session.relay.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "session ", absl::Hex(session.session_id, absl::kZeroPad16), " has no relay address"));
    }
    absl::StatusOr<HopAead> aead = MakeAead(session.key, HopRole::kInitiator, session.session_id);
    if (!aead.ok()) return aead.status();
    aeads.push_back(*std::move(aead));
  }
  std::vector<Flow> flows;
  flows.reserve(flow_indexes.size());
  for (uint32_t index : flow_indexes) {
    if (index == UINT32_MAX) {
      return absl::InvalidArgumentError("flow index 2^32 - 1 has no flow id (index + 1)");
    }
    Flow flow;
    flow.index = index;
    flow.session = index % sessions.size();
    flows.push_back(flow);
  }
  absl::StatusOr<dataplane::UdpSocketGroup> group =
      dataplane::OpenUdpSocketGroup(SenderListen(sessions[0].relay), 1, kSocketBufferBytes);
  if (!group.ok()) return group.status();
  UniqueFd fd = std::move(group->sockets[0]);
  absl::StatusOr<dataplane::SocketAddress> local = LocalAddress(fd.get());
  if (!local.ok()) return local.status();
  return std::unique_ptr<FlowSender>(new FlowSender(std::move(sessions), std::move(aeads),
                                                    std::move(flows), std::move(fd), *local,
                                                    payload_size, batch));
}

FlowSender::FlowSender(std::vector<AgentSession> sessions, std::vector<HopAead> aeads,
                       std::vector<Flow> flows, UniqueFd fd, dataplane::SocketAddress local,
                       size_t payload_size, size_t batch)
    : sessions_(std::move(sessions)),
      aeads_(std::move(aeads)),
      flows_(std::move(flows)),
      probe_sequence_(sessions_.size(), 0),
      probe_answered_(sessions_.size(), false),
      fd_(std::move(fd)),
      local_(local),
      payload_size_(payload_size),
      send_(batch, dataplane::FrameSize(payload_size)),
      returns_(kReceiveBatch, kReturnDatagramSize) {
  for (size_t i = 0; i < flows_.size(); ++i) slot_by_index_[flows_[i].index] = i;
}

int FlowSender::FindSession(uint64_t session_id) const {
  for (size_t i = 0; i < sessions_.size(); ++i) {
    if (sessions_[i].session_id == session_id) return static_cast<int>(i);
  }
  return -1;
}

bool FlowSender::QueueData(Flow& flow, uint8_t flags) {
  absl::Span<uint8_t> buffer = send_.Next();
  const AgentSession& session = sessions_[flow.session];
  const uint64_t sequence = flow.next_sequence++;
  uint8_t* payload = buffer.data() + dataplane::kHeaderSize;
  dataplane::StoreBigEndian32(payload, flow.index);
  dataplane::StoreBigEndian64(payload + 4, sequence);
  std::memset(payload + kStampSize, kFill, payload_size_ - kStampSize);
  FrameHeader header;
  header.type = FrameType::kData;
  header.flags = flags;
  header.session_id = session.session_id;
  header.service_id = session.service_id;
  header.flow_id = flow.index + 1;
  header.counter = dataplane::MakeCounter(dataplane::Direction::kInitiatorToResponder, sequence);
  DropReason reason;
  const size_t size =
      dataplane::SealFrame(aeads_[flow.session], header, payload_size_, buffer, &reason);
  if (size == 0) {
    LOG_IF(ERROR, !seal_error_logged_)
        << "Cannot seal a frame: " << dataplane::DropReasonName(reason);
    seal_error_logged_ = true;
    return false;
  }
  send_.Commit(size, session.relay.get(), session.relay.length);
  return true;
}

void FlowSender::Flush(SendTotals* totals) {
  if (send_.size() == 0) return;
  dataplane::SendBatch::FlushResult result = send_.Flush(fd_.get());
  totals->sent += result.sent;
  totals->send_failed += result.dropped;
  if (result.last_error == EAGAIN || result.last_error == ENOBUFS) {
    // The socket buffer is full: wait (briefly) for room instead of sealing
    // frames only to throw them away.
    pollfd p{fd_.get(), POLLOUT, 0};
    poll(&p, 1, 1);
  }
}

void FlowSender::SendProbes() {
  SendTotals ignored;
  for (size_t i = 0; i < sessions_.size(); ++i) {
    if (probe_answered_[i]) continue;
    if (send_.size() == send_.capacity()) Flush(&ignored);
    absl::Span<uint8_t> buffer = send_.Next();
    FrameHeader header;
    header.type = FrameType::kProbe;
    header.session_id = sessions_[i].session_id;
    header.service_id = sessions_[i].service_id;
    header.flow_id = 0;  // the probes' own flow: data flows start at 1
    header.counter =
        dataplane::MakeCounter(dataplane::Direction::kInitiatorToResponder, ++probe_sequence_[i]);
    DropReason reason;
    const size_t size = dataplane::SealFrame(aeads_[i], header, 0, buffer, &reason);
    if (size > 0) send_.Commit(size, sessions_[i].relay.get(), sessions_[i].relay.length);
  }
  Flush(&ignored);
}

void FlowSender::ReceiveReturns() {
  // The answers need no replay window: a replayed PROBE_ACK or CLOSE can at
  // most make the sender mark a session answered again or open a flow the
  // relay already has, and the relay takes a repeated OPEN as data.
  while (returns_.Receive(fd_.get()) > 0) {
    for (size_t i = 0; i < returns_.size(); ++i) {
      if (returns_.truncated(i)) continue;
      absl::Span<uint8_t> frame = returns_.data(i);
      dataplane::FrameResult<dataplane::FrameView> view = dataplane::DecodeFrame(frame);
      if (!view.ok()) continue;
      const FrameHeader& header = view->header;
      const int session = FindSession(header.session_id);
      if (session < 0) continue;
      if (header.type != FrameType::kProbeAck && header.type != FrameType::kClose) continue;
      if (aeads_[session].Open(frame) != dataplane::AeadStatus::kOk) continue;
      if (header.type == FrameType::kProbeAck) {
        probe_answered_[session] = true;
        continue;
      }
      ++closes_;
      auto slot = slot_by_index_.find(header.flow_id - 1);
      if (header.flow_id != 0 && slot != slot_by_index_.end()) {
        flows_[slot->second].needs_open = true;
      }
    }
  }
}

size_t FlowSender::SendOpens(const std::function<bool(uint32_t)>& delivered) {
  size_t sent = 0;
  SendTotals totals;
  for (Flow& flow : flows_) {
    flow.needs_open = false;
    if (delivered(flow.index)) continue;
    if (send_.size() == send_.capacity()) Flush(&totals);
    if (QueueData(flow, dataplane::kFlagOpen)) ++sent;
  }
  Flush(&totals);
  return sent;
}

SendTotals FlowSender::Blast(absl::Time until, double rate) {
  SendTotals totals;
  if (flows_.empty()) return totals;
  const uint64_t closes_before = closes_;
  const absl::Time start = absl::Now();
  uint64_t queued = 0;  // frames put in batches (the rate limit counts these)
  int batches = 0;
  for (;;) {
    const absl::Time now = absl::Now();
    if (now >= until) break;
    size_t n = send_.capacity();
    if (rate > 0) {
      const double due = std::floor(absl::ToDoubleSeconds(now - start) * rate);
      if (due <= static_cast<double>(queued)) {
        // Ahead of the rate: sleep until the next frame is due (at most 1 ms,
        // to keep taking answers).
        const double next_s = (static_cast<double>(queued) + 1) / rate;
        absl::Duration wait = start + absl::Seconds(next_s) - now;
        absl::SleepFor(std::min(wait, absl::Milliseconds(1)));
        continue;
      }
      n = std::min(n, static_cast<size_t>(due - static_cast<double>(queued)));
    }
    // The relay's answers first, so a flow it closed is opened by its next frame.
    if (batches++ % kBatchesPerReturnCheck == 0) ReceiveReturns();
    for (size_t i = 0; i < n; ++i) {
      Flow& flow = flows_[cursor_];
      cursor_ = cursor_ + 1 == flows_.size() ? 0 : cursor_ + 1;
      const bool reopen = flow.needs_open;
      if (!QueueData(flow, reopen ? dataplane::kFlagOpen : 0)) continue;
      flow.needs_open = false;
      if (reopen) ++totals.reopened;
    }
    queued += n;
    Flush(&totals);
  }
  ReceiveReturns();
  totals.closes = closes_ - closes_before;
  return totals;
}

// --- FrameSink ---------------------------------------------------------------

uint64_t SinkTotals::dropped() const {
  uint64_t sum = 0;
  for (uint64_t d : drops) sum += d;
  return sum;
}

// One thread's counters: written by that thread only (load + store), read by
// any (see dataplane::DropCounters).
struct FrameSink::Counters {
  alignas(64) std::atomic<uint64_t> delivered{0};
  std::atomic<uint64_t> payload_bytes{0};
  std::atomic<uint64_t> closes{0};
  dataplane::DropCounters drops;

  static void Add(std::atomic<uint64_t>& counter, uint64_t n) {
    counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
};

// One sink thread: its socket's datagrams, its own AEAD contexts and replay
// windows. Only the thread that runs it touches it.
class FrameSink::Worker {
 public:
  Worker(FrameSink* sink, int fd, Counters* counters, size_t payload_size)
      : sink_(sink),
        fd_(fd),
        counters_(counters),
        batch_(kReceiveBatch, std::max(dataplane::FrameSize(payload_size), kReturnDatagramSize)) {}

  absl::Status AddHop(const ConnectorHop& hop) {
    absl::StatusOr<HopAead> aead = MakeAead(hop.key, HopRole::kResponder, hop.session_id);
    if (!aead.ok()) return aead.status();
    hops_.insert_or_assign(hop.session_id, std::make_unique<Hop>(Hop{*std::move(aead), {}}));
    return absl::OkStatus();
  }

  void Run() {
    while (!sink_->stop_.load(std::memory_order_relaxed)) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      while (batch_.Receive(fd_) > 0) {
        for (size_t i = 0; i < batch_.size(); ++i) Handle(i);
      }
    }
  }

 private:
  struct Hop {
    HopAead aead;
    absl::flat_hash_map<uint32_t, dataplane::ReplayWindow> windows;  // by upstream flow id
  };

  void Handle(size_t i) {
    if (batch_.truncated(i)) {
      counters_->drops.Increment(DropReason::kTooLong);
      return;
    }
    absl::Span<uint8_t> frame = batch_.data(i);
    dataplane::FrameResult<dataplane::FrameView> view = dataplane::DecodeFrame(frame);
    if (!view.ok()) {
      counters_->drops.Increment(dataplane::ToDropReason(view.error()));
      return;
    }
    const FrameHeader& header = view->header;
    auto hop = hops_.find(header.session_id);
    if (hop == hops_.end()) {
      counters_->drops.Increment(DropReason::kUnknownSession);
      return;
    }
    if (header.type != FrameType::kData && header.type != FrameType::kClose) {
      counters_->drops.Increment(DropReason::kUnexpectedType);
      return;
    }
    dataplane::ReplayWindow& window = hop->second->windows[header.flow_id];
    absl::Span<uint8_t> payload;
    DropReason reason;
    if (!dataplane::OpenFrame(hop->second->aead, window, header, frame, &payload, &reason)) {
      counters_->drops.Increment(reason);
      return;
    }
    if (header.type == FrameType::kClose) {
      Counters::Add(counters_->closes, 1);
      return;
    }
    Counters::Add(counters_->delivered, 1);
    Counters::Add(counters_->payload_bytes, payload.size());
    if (payload.size() >= kStampSize) {
      const uint32_t index = dataplane::LoadBigEndian32(payload.data());
      if (index < sink_->flows_) {
        std::atomic<uint8_t>& seen = sink_->seen_[index];
        if (seen.load(std::memory_order_relaxed) == 0) seen.store(1, std::memory_order_relaxed);
      }
    }
  }

  FrameSink* const sink_;
  const int fd_;
  Counters* const counters_;
  dataplane::RecvBatch batch_;
  absl::flat_hash_map<uint64_t, std::unique_ptr<Hop>> hops_;
};

absl::StatusOr<std::unique_ptr<FrameSink>> FrameSink::Create(const std::string& listen, int threads,
                                                             uint32_t flows, size_t payload_size) {
  if (threads < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("the sink needs at least one thread, not ", threads));
  }
  if (absl::Status s = CheckPayloadSize(payload_size); !s.ok()) return s;
  absl::StatusOr<dataplane::UdpSocketGroup> group =
      dataplane::OpenUdpSocketGroup(listen, threads, kSocketBufferBytes);
  if (!group.ok()) return group.status();
  absl::StatusOr<dataplane::SocketAddress> local = LocalAddress(group->sockets[0].get());
  if (!local.ok()) return local.status();
  return std::unique_ptr<FrameSink>(
      new FrameSink(std::move(group->sockets), local->ToString(), flows, payload_size));
}

FrameSink::FrameSink(std::vector<UniqueFd> sockets, std::string address, uint32_t flows,
                     size_t payload_size)
    : sockets_(std::move(sockets)),
      address_(std::move(address)),
      flows_(flows),
      payload_size_(payload_size),
      seen_(new std::atomic<uint8_t>[flows]) {
  for (uint32_t i = 0; i < flows_; ++i) seen_[i].store(0, std::memory_order_relaxed);
  for (size_t i = 0; i < sockets_.size(); ++i) counters_.push_back(std::make_unique<Counters>());
}

FrameSink::~FrameSink() { Stop(); }

absl::Status FrameSink::Start(const std::vector<ConnectorHop>& hops) {
  if (!workers_.empty()) return absl::FailedPreconditionError("the sink is already started");
  std::vector<std::unique_ptr<Worker>> workers;
  for (size_t i = 0; i < sockets_.size(); ++i) {
    auto worker =
        std::make_unique<Worker>(this, sockets_[i].get(), counters_[i].get(), payload_size_);
    for (const ConnectorHop& hop : hops) {
      if (absl::Status s = worker->AddHop(hop); !s.ok()) return s;
    }
    workers.push_back(std::move(worker));
  }
  workers_ = std::move(workers);
  for (auto& worker : workers_) threads_.emplace_back([w = worker.get()] { w->Run(); });
  return absl::OkStatus();
}

void FrameSink::Stop() {
  stop_.store(true, std::memory_order_relaxed);
  for (std::thread& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

uint32_t FrameSink::delivered_flows() const {
  uint32_t count = 0;
  for (uint32_t i = 0; i < flows_; ++i) count += delivered(i) ? 1 : 0;
  return count;
}

SinkTotals FrameSink::Totals() const {
  SinkTotals totals;
  for (const auto& counters : counters_) {
    totals.delivered += counters->delivered.load(std::memory_order_relaxed);
    totals.payload_bytes += counters->payload_bytes.load(std::memory_order_relaxed);
    totals.closes += counters->closes.load(std::memory_order_relaxed);
    const std::array<uint64_t, dataplane::kDropReasonCount> drops = counters->drops.Snapshot();
    for (size_t i = 0; i < drops.size(); ++i) totals.drops[i] += drops[i];
  }
  return totals;
}

}  // namespace ferry::bench
