// The relay's forwarding logic on one worker: stitches an agent hop to a
// connector hop, re-sealing every frame with the next hop's key.
//
// Flow table: keyed by (agent session, agent flow id). The upstream leg gets a
// flow id of its own, chosen so that upstream_flow % workers == this worker
// (the CBPF program then delivers the connector's answers here), and indexed
// by (connector session, upstream flow id) alone: an answer can only reach
// the agent session that opened the flow. A frame naming a service other than
// its session's is dropped (service_not_allowed) before any state is made.
//
// UDP services ride datagrams both ways; a flow that arrives on a stream
// transport (TCP services) goes upstream on this worker's stream transport to
// the connector. Credit (WINDOW frames) is end to end, so the relay only
// re-seals it. PROBE frames from an agent are answered with PROBE_ACK (the
// agent's liveness check of its session).
#pragma once

#include <cstdint>

#include "dataplane/dataplane_worker.h"
#include "dataplane/flow_table.h"
#include "dataplane/replay_window.h"

namespace ferry::dataplane {

class RelayWorker : public DataplaneWorker {
 public:
  RelayWorker(WorkerOptions options, UniqueFd udp, UniqueFd stream_listener,
              WorkerSnapshots<RouteTable>* routes);

 protected:
  void HandleFrame(absl::Span<uint8_t> frame, const Origin& origin) override;
  void OnTick() override;
  void OnStreamClosed(StreamConn* conn) override;
  void OnRoutesChanged() override;

 private:
  struct Flow {
    uint64_t connector_session = 0;
    uint32_t upstream_flow = 0;
    uint32_t service_id = 0;
    bool stream = false;
    bool agent_fin = false;
    bool connector_fin = false;
    Origin agent;                          // where answers go
    StreamConn* connector_conn = nullptr;  // stream flows: the upstream transport
    ReplayWindow from_agent;
    ReplayWindow from_connector;
  };
  struct Probe {
    ReplayWindow window;
  };

  void FromAgent(const SessionRef& ref, const FrameHeader& header, absl::Span<uint8_t> frame,
                 const Origin& origin);
  void FromConnector(const SessionRef& ref, const FrameHeader& header, absl::Span<uint8_t> frame);
  void AnswerProbe(const SessionRef& ref, const FrameHeader& header, absl::Span<uint8_t> frame,
                   const Origin& origin);
  FlowHandle CreateFlow(const SessionRef& ref, uint32_t flow_id, const Origin& origin,
                        DropReason* reason);
  void EraseFlow(FlowHandle handle);
  // Re-seals an authenticated frame `in` of flow `handle` for the hop `to`
  // and sends it there. Ends the flow after a CLOSE or once both sides sent
  // FIN, and resets a stream flow whose frame could not be queued.
  void SendOnward(FlowHandle handle, const SessionRoute& route, const FrameHeader& in,
                  absl::Span<const uint8_t> payload, Hop to);
  // Where a flow's frames to the connector go: its stream transport, or the
  // connector's UDP address.
  static Origin ConnectorDest(const SessionRoute& route, const Flow& flow);
  // Tells the agent that a flow is gone (so it opens a new one).
  void CloseToAgent(const SessionRoute& route, uint32_t flow_id, const Origin& dest);
  void CloseToConnector(const SessionRoute& route, const Flow& flow);

  FlowTable<Flow> flows_;
  FlowTable<FlowHandle> upstream_;
  FlowTable<Probe> probes_;
  uint32_t next_upstream_ = 0;
};

}  // namespace ferry::dataplane
