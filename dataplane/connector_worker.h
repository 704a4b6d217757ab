// The connector's forwarding logic on one worker: frames from relays (or, in
// a later version, agents on a direct path) on the connector hop become
// traffic to the service's backends, and the backends' answers go back on the
// flow they belong to.
//
// A flow (connector session, flow id) picks one healthy backend of its
// service by rendezvous hashing over (session, flow id), so it sticks to that
// backend while it lives and new flows spread evenly. A UDP flow gets its own
// connected UDP socket to the backend; an ICMP flow an unprivileged ICMP
// datagram socket (echo requests out, echo replies back, with the client's
// identifier restored); a TCP flow, which arrives on a stream transport, a TCP
// connection driven by a TcpEdge. When a route change removes a UDP flow's
// backend, the flow is closed and the agent re-opens it onto a remaining one;
// TCP connections keep their backend until they end.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "common/unique_fd.h"
#include "dataplane/dataplane_worker.h"
#include "dataplane/flow_table.h"
#include "dataplane/replay_window.h"
#include "dataplane/tcp_edge.h"

namespace ferry::dataplane {

class ConnectorWorker : public DataplaneWorker, public TcpEdge::Owner {
 public:
  ConnectorWorker(WorkerOptions options, UniqueFd udp, UniqueFd stream_listener,
                  WorkerSnapshots<RouteTable>* routes);
  ~ConnectorWorker() override;

  // TcpEdge::Owner.
  bool SendFlowFrame(TcpEdge* edge, FrameType type, uint8_t flags,
                     absl::Span<const uint8_t> payload) override;
  void EdgeDone(TcpEdge* edge, bool reset) override;
  bool TransportCongested(TcpEdge* edge) override;

 protected:
  void HandleFrame(absl::Span<uint8_t> frame, const Origin& origin) override;
  void OnTick() override;
  void OnStreamClosed(StreamConn* conn) override;
  void OnStreamWritable(StreamConn* conn) override;
  void OnRoutesChanged() override;
  void AfterEvents() override;

 private:
  // Readiness of a flow's backend datagram socket.
  struct BackendHandler : public EventLoop::Handler {
    ConnectorWorker* worker = nullptr;
    FlowHandle flow = kNoFlow;
    void OnEvents(uint32_t events) override;
  };
  struct Flow {
    uint32_t service_id = 0;
    v1::Protocol protocol = v1::PROTOCOL_UNSPECIFIED;
    Origin relay;  // where answers go
    ReplayWindow from_relay;
    SocketAddress backend;
    UniqueFd socket;  // UDP and ICMP flows
    BackendHandler handler;
    std::unique_ptr<TcpEdge> edge;  // TCP flows
    uint16_t echo_id = 0;           // the client's echo identifier
  };

  FlowHandle CreateFlow(const SessionRef& ref, const FrameHeader& header, const Origin& origin,
                        DropReason* reason);
  void ToBackend(FlowHandle handle, const FrameHeader& header, absl::Span<uint8_t> payload);
  void ReadBackend(FlowHandle handle);
  // Seals a frame of flow `handle` and sends it to its relay.
  bool SendOnFlow(FlowHandle handle, FrameType type, uint8_t flags,
                  absl::Span<const uint8_t> payload);
  bool SendOnFlowFromBuffer(FlowHandle handle, const SessionRoute& route,
                            absl::Span<uint8_t> buffer, size_t payload_size);
  void CloseToRelay(const SessionRoute& route, uint32_t flow_id, const Origin& dest);
  // Forgets a flow: unregisters its socket, retires its edge.
  void EraseFlow(FlowHandle handle);

  FlowTable<Flow> flows_;
  std::vector<std::unique_ptr<TcpEdge>> retired_edges_;
};

// Picks the backend for a flow by rendezvous hashing: the index into
// `backends` (which must not be empty) with the highest hash of (backend,
// session, flow). Stable while the set is, and removing one backend moves
// only the flows that were on it.
size_t PickBackend(const std::vector<SocketAddress>& backends, uint64_t session_id,
                   uint32_t flow_id);

}  // namespace ferry::dataplane
