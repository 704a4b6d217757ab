// The shell every data-plane worker shares (relay, connector, agent): one
// thread with its own epoll loop, its own UDP socket of the SO_REUSEPORT group
// (so the CBPF program delivers it exactly the flows it owns), recvmmsg /
// sendmmsg batches, stream (TCP) transports to and from peers, drop and
// traffic counters, and the route table it forwards by.
//
// The role's forwarding logic is a subclass: it gets every frame (from UDP or
// from a stream) through HandleFrame and answers with the Send helpers. All
// of it runs on the worker thread; nothing on the per-frame path allocates or
// locks. Route tables are picked up between batches (WorkerSnapshots), so a
// table never changes under a frame being handled.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"
#include "dataplane/buffer_pool.h"
#include "dataplane/datagram_batch.h"
#include "dataplane/drop_reason.h"
#include "dataplane/event_loop.h"
#include "dataplane/flow_table.h"
#include "dataplane/frame.h"
#include "dataplane/route_table.h"
#include "dataplane/service_counters.h"
#include "dataplane/socket_address.h"
#include "dataplane/stream_conn.h"
#include "dataplane/worker_snapshots.h"

namespace ferry::dataplane {

struct WorkerOptions {
  size_t index = 0;    // this worker's number, 0..workers-1
  size_t workers = 1;  // workers in the group (the CBPF modulus)
  size_t batch_size = 64;
  // Largest datagram taken or sent; bigger ones are dropped as too_long.
  size_t datagram_size = 4096;
  size_t flow_capacity = 65536;
  size_t max_flows_per_session = 4096;
  absl::Duration udp_idle_timeout = absl::Seconds(60);
  absl::Duration stream_idle_timeout = absl::Hours(1);
  // Stream transports: chunk pool and per-connection queue limit.
  size_t pool_chunk_size = 16 * 1024;
  size_t pool_chunks = 8192;
  size_t stream_queue_limit = 64 * 1024 * 1024;
};

// The flow-table options of a worker's own flows (capacity and per-session cap).
FlowTableOptions FlowOptionsFor(const WorkerOptions& options);

// Where a frame came from, or where one goes: a UDP peer (on the worker's
// socket) or a stream transport connection.
struct Origin {
  StreamConn* conn = nullptr;  // set: stream transport
  SocketAddress udp;           // else: UDP peer
};

class DataplaneWorker : public EventLoop::Handler, public StreamConn::Delegate {
 public:
  // `udp` may be empty (no UDP data port, e.g. tests); `stream_listener` may
  // be empty (no incoming stream transports). `routes` may be null (the agent
  // keeps its own sessions).
  DataplaneWorker(WorkerOptions options, UniqueFd udp, UniqueFd stream_listener,
                  WorkerSnapshots<RouteTable>* routes);
  ~DataplaneWorker() override;

  DataplaneWorker(const DataplaneWorker&) = delete;
  DataplaneWorker& operator=(const DataplaneWorker&) = delete;

  // Creates the loop and registers the sockets. Call once, before Run.
  absl::Status Init();
  // The worker thread's body: runs until Stop(). Releases its route table at the end.
  void Run();
  // Any thread.
  void Stop();

  EventLoop* loop() { return loop_.get(); }
  size_t index() const { return options_.index; }

  // Read by the metrics thread.
  const DropCounters& drops() const { return drops_; }
  const ServiceCounters& traffic() const { return traffic_; }
  uint64_t flows() const { return flows_gauge_.load(std::memory_order_relaxed); }
  uint64_t evictions() const { return evictions_.load(std::memory_order_relaxed); }
  uint64_t route_version() const { return route_version_.load(std::memory_order_relaxed); }

  // EventLoop::Handler: the UDP socket / the stream listener.
  void OnEvents(uint32_t events) override;
  // StreamConn::Delegate.
  void OnFrame(StreamConn* conn, absl::Span<uint8_t> frame) override;
  void OnWritable(StreamConn* conn) override;
  void OnClosed(StreamConn* conn, const absl::Status& why) override;

 protected:
  // One frame from UDP (origin.conn null) or from a stream. `frame` is
  // mutable so it can be opened in place; it is valid during the call only.
  virtual void HandleFrame(absl::Span<uint8_t> frame, const Origin& origin) = 0;
  // Once a second: idle sweeps and the like.
  virtual void OnTick() {}
  // A stream transport closed; drop what rides it. The conn is deleted after.
  virtual void OnStreamClosed(StreamConn* /*conn*/) {}
  // A stream transport drained below its low-water mark.
  virtual void OnStreamWritable(StreamConn* /*conn*/) {}
  // A new route table was picked up (after the first one too).
  virtual void OnRoutesChanged() {}
  // Called after each round of events, before the send batch is flushed.
  virtual void AfterEvents() {}

  // The route table in use (null before the first one).
  const RouteTable* routes() const { return table_; }
  // The session and hop `session_id` names in the table in use; empty when
  // unknown or before the first table.
  SessionRef FindSession(uint64_t session_id) const {
    return table_ == nullptr ? SessionRef{} : table_->FindSession(session_id);
  }
  // The time of the current batch (CLOCK_REALTIME ns; counters derive from it).
  int64_t now_ns() const { return now_ns_; }
  // A fresh send sequence for any flow of this worker: strictly increasing,
  // and at least the wall clock in ns, so sequences are never reused even
  // across restarts of the process under the same keys (a flow sends far
  // fewer than one frame per ns). See dataplane/aead.h, nonce uniqueness.
  uint64_t NextSequence();

  // A buffer of `frame_capacity` bytes to build a frame for `dest` in (a slot
  // of the UDP send batch, or a scratch buffer for streams), then Send with
  // the frame's size. One BeginSend at a time.
  absl::Span<uint8_t> BeginSend(const Origin& dest);
  // Sends the frame built in the BeginSend buffer. False (and counted as
  // queue_full / send_failed) when it could not be queued.
  bool FinishSend(const Origin& dest, size_t length);

  // Seals `payload` under `aead` with `header` and sends it to `dest`,
  // counting it as out for its service. False (counted) when it could not be
  // built or queued.
  bool SendSealed(HopAead& aead, const FrameHeader& header, absl::Span<const uint8_t> payload,
                  const Origin& dest);

  // The stream transport of this worker to `address` ("host:port"), connected
  // on first use; null (counted) when it cannot be opened.
  StreamConn* StreamTo(const std::string& address);

  void Drop(DropReason reason) { drops_.Increment(reason); }
  void SetFlowCount(size_t flows) { flows_gauge_.store(flows, std::memory_order_relaxed); }
  void CountEvictions(size_t n) {
    evictions_.store(evictions_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  ServiceCounters& traffic_mut() { return traffic_; }
  BufferPool* pool() { return &pool_; }
  const WorkerOptions& options() const { return options_; }

 private:
  void ReadUdp();
  void AcceptStreams();
  void BetweenBatches();
  void AdoptStream(UniqueFd fd, bool connecting, const std::string& peer);

  const WorkerOptions options_;
  UniqueFd udp_;
  UniqueFd stream_listener_;
  WorkerSnapshots<RouteTable>* const routes_;
  std::unique_ptr<EventLoop> loop_;
  RecvBatch recv_;
  SendBatch send_;
  BufferPool pool_;
  std::vector<uint8_t> scratch_;
  const RouteTable* table_ = nullptr;
  int64_t now_ns_ = 0;
  uint64_t last_sequence_ = 0;

  // Stream transports: every open one (owned), and the outgoing ones by address.
  absl::flat_hash_map<StreamConn*, std::unique_ptr<StreamConn>> streams_;
  absl::flat_hash_map<std::string, StreamConn*> streams_by_address_;
  std::vector<StreamConn*> closed_streams_;

  // The listener's handler (the UDP socket uses `this`).
  class ListenerHandler : public EventLoop::Handler {
   public:
    explicit ListenerHandler(DataplaneWorker* worker) : worker_(worker) {}
    void OnEvents(uint32_t) override { worker_->AcceptStreams(); }

   private:
    DataplaneWorker* worker_;
  };
  ListenerHandler listener_handler_{this};

  DropCounters drops_;
  ServiceCounters traffic_;
  std::atomic<uint64_t> flows_gauge_{0};
  std::atomic<uint64_t> evictions_{0};
  std::atomic<uint64_t> route_version_{0};
};

}  // namespace ferry::dataplane
