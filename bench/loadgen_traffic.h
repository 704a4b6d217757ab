// The data path of ferry-loadgen (bench/loadgen.cc), which plays both ends of
// a relay so that the relay alone is measured:
//
//   FlowSender  the agent end: one UDP socket on which it sends DATA frames of
//               many flows to the relay in sendmmsg batches, sealed with the
//               agent hop key (initiator), and on which it takes the relay's
//               answers (PROBE_ACK, CLOSE).
//   FrameSink   the connector end: UDP sockets (one per thread, steered by
//               flow id like the data plane's own) on which it receives the
//               relay's re-sealed frames with recvmmsg and counts those that
//               authenticate under a connector hop key (responder) and pass a
//               per-flow replay window.
//
// Every payload starts with a stamp, the flow's index (big-endian u32) and the
// frame's sequence (u64), so the sink can tell which of the sender's flows got
// through the relay, whatever upstream flow id the relay gave them.
//
// Nonces follow dataplane/aead.h: flow ids are index + 1 (0 is the probes'
// flow), and each flow's counter comes from its own sequence, which only
// increases (initiator direction).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"
#include "dataplane/aead.h"
#include "dataplane/datagram_batch.h"
#include "dataplane/drop_reason.h"
#include "dataplane/socket_address.h"

namespace ferry::bench {

// The payload stamp: flow index (4 bytes) and sequence (8 bytes), big-endian.
inline constexpr size_t kStampSize = 12;
// Payload sizes the loadgen can send: room for the stamp, and a frame that fits
// one UDP datagram over IPv4 (65507 bytes).
inline constexpr size_t kMinPayloadSize = kStampSize;
inline constexpr size_t kMaxPayloadSize = 65507 - dataplane::kMinFrameSize;

// The agent hop of one data-plane session, as Sessions.OpenSession returns it.
struct AgentSession {
  uint64_t session_id = 0;
  uint32_t service_id = 0;
  std::string key;                 // kAeadKeySize bytes (AES-256-GCM)
  dataplane::SocketAddress relay;  // where the relay takes UDP frames
};

// The connector hop of a session, as the connector's route snapshot holds it.
struct ConnectorHop {
  uint64_t session_id = 0;
  std::string key;  // kAeadKeySize bytes
};

// Totals of one FlowSender's Blast.
struct SendTotals {
  uint64_t sent = 0;         // frames the kernel accepted
  uint64_t send_failed = 0;  // frames sendmmsg refused (a full socket buffer, an error)
  uint64_t reopened = 0;     // frames sent with kFlagOpen again after the relay closed the flow
  uint64_t closes = 0;       // authenticated CLOSE frames received from the relay
};

// The agent end on one UDP socket. One thread at a time: the thread that made
// it, then (handed over by starting it) the thread that runs Blast.
class FlowSender {
 public:
  // `flow_indexes` are the flows this sender owns (each in [0, 2^32 - 1));
  // flow i belongs to session i % sessions.size() and travels as flow id i + 1.
  // Each payload is `payload_size` bytes; frames go out `batch` at a time.
  // INVALID_ARGUMENT for no sessions, a key that is not 32 bytes, a payload size
  // outside [kMinPayloadSize, kMaxPayloadSize] or a batch of 0; the socket's
  // errno status when it cannot be opened.
  static absl::StatusOr<std::unique_ptr<FlowSender>> Create(std::vector<AgentSession> sessions,
                                                            std::vector<uint32_t> flow_indexes,
                                                            size_t payload_size, size_t batch);

  // The socket's local address ("127.0.0.1:port"): where the relay answers.
  const dataplane::SocketAddress& local_address() const { return local_; }
  size_t flow_count() const { return flows_.size(); }

  // Sends one PROBE on every session that has not been answered yet.
  void SendProbes();
  // Takes every datagram waiting on the socket: an authenticated PROBE_ACK
  // marks its session answered, an authenticated CLOSE marks its flow to be
  // opened again (the next frame carries kFlagOpen). Anything else is ignored.
  // Never blocks.
  void ReceiveReturns();
  // True once the relay answered a probe on `session` (an index into the
  // sessions given to Create): it holds the session's keys.
  bool probe_answered(size_t session) const { return probe_answered_[session]; }

  // Sends one DATA frame with kFlagOpen on each owned flow for which
  // `delivered(index)` is false; returns how many it sent. Marks every owned
  // flow open (its next frame carries no flag unless the relay closes it).
  size_t SendOpens(const std::function<bool(uint32_t)>& delivered);

  // Sends DATA frames round-robin over the owned flows until `until`, at
  // `rate` frames/s (0: as fast as the socket takes them), taking the relay's
  // answers between batches. Returns the totals of this call.
  SendTotals Blast(absl::Time until, double rate);

 private:
  struct Flow {
    uint32_t index = 0;
    size_t session = 0;
    uint64_t next_sequence = 1;
    bool needs_open = true;
  };

  FlowSender(std::vector<AgentSession> sessions, std::vector<dataplane::HopAead> aeads,
             std::vector<Flow> flows, UniqueFd fd, dataplane::SocketAddress local,
             size_t payload_size, size_t batch);

  // Lays out, stamps and seals the next frame of `flow` into the send batch.
  // False when the frame could not be sealed (a bug: logged once).
  bool QueueData(Flow& flow, uint8_t flags);
  // Flushes the send batch; adds to `totals`.
  void Flush(SendTotals* totals);
  // The session whose agent hop is `session_id`, or -1.
  int FindSession(uint64_t session_id) const;

  const std::vector<AgentSession> sessions_;
  std::vector<dataplane::HopAead> aeads_;  // one per session, initiator
  std::vector<Flow> flows_;
  absl::flat_hash_map<uint32_t, size_t> slot_by_index_;  // flow index -> position in flows_
  std::vector<uint64_t> probe_sequence_;
  std::vector<bool> probe_answered_;
  UniqueFd fd_;
  dataplane::SocketAddress local_;
  const size_t payload_size_;
  dataplane::SendBatch send_;
  dataplane::RecvBatch returns_;
  size_t cursor_ = 0;
  uint64_t closes_ = 0;  // authenticated CLOSE frames, since Create
  bool seal_error_logged_ = false;
};

// What the sink counted so far, summed over its threads.
struct SinkTotals {
  uint64_t delivered = 0;      // DATA frames that authenticated and were new
  uint64_t payload_bytes = 0;  // their payload bytes
  uint64_t closes = 0;         // authenticated CLOSE frames (the relay ended a flow)
  std::array<uint64_t, dataplane::kDropReasonCount> drops = {};  // by dataplane::DropReason

  uint64_t dropped() const;
};

// The connector end. Create binds; Start starts the threads; the destructor
// (or Stop) joins them. Counters may be read from any thread at any time.
class FrameSink {
 public:
  // `threads` (>= 1) sockets of one SO_REUSEPORT group on `listen` (e.g.
  // "127.0.0.1:0"), steered by flow id; each takes datagrams of up to
  // FrameSize(payload_size) bytes. `flows` is the number of stamped flow
  // indexes to track (larger indexes are delivered but not tracked).
  // INVALID_ARGUMENT for threads < 1 or a payload size out of range; the bind
  // errors of dataplane::OpenUdpSocketGroup.
  static absl::StatusOr<std::unique_ptr<FrameSink>> Create(const std::string& listen, int threads,
                                                           uint32_t flows, size_t payload_size);
  ~FrameSink();  // Stops.

  // "127.0.0.1:port": the address to announce to the Intermediate.
  const std::string& address() const { return address_; }

  // Starts the threads, each with its own AEAD contexts for `hops`
  // (responder). INVALID_ARGUMENT for a key that is not 32 bytes;
  // FAILED_PRECONDITION when already started.
  absl::Status Start(const std::vector<ConnectorHop>& hops);
  // Stops and joins the threads. Idempotent.
  void Stop();

  // True once a frame of flow `index` (< flows) authenticated. Any thread.
  bool delivered(uint32_t index) const {
    return index < flows_ && seen_[index].load(std::memory_order_relaxed) != 0;
  }
  // Flows (of `flows`) that delivered at least one frame. Any thread.
  uint32_t delivered_flows() const;
  // Sum of every thread's counters. Any thread.
  SinkTotals Totals() const;

 private:
  struct Counters;
  class Worker;

  FrameSink(std::vector<UniqueFd> sockets, std::string address, uint32_t flows,
            size_t payload_size);

  std::vector<UniqueFd> sockets_;
  const std::string address_;
  const uint32_t flows_;
  const size_t payload_size_;
  std::unique_ptr<std::atomic<uint8_t>[]> seen_;
  std::vector<std::unique_ptr<Counters>> counters_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
};

}  // namespace ferry::bench
