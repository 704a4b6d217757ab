// The agent's data plane: one worker thread that serves every exposure.
//
// An exposure is a local listener for one service: a UDP socket (each client
// address is one flow) or a TCP listener (each accepted connection is one
// flow, driven by a TcpEdge over a stream transport to the relay). Frames go
// to the relay on the exposure's current session, sealed with the agent hop's
// key; answers come back on the worker's own UDP socket or the stream. In
// intercept mode an ICMP exposure is a raw ICMP socket bound to the service's
// VIP: each (source, echo identifier) is one flow, as the connector expects.
//
// Sessions come from the control thread (InstallSession, via the loop's
// Post). The worker probes each current session's relay every
// kProbeInterval; when kProbesMissed probes in a row go unanswered (the relay
// restarted elsewhere, or the Intermediate forgot the session) it reports the
// session dead so the control thread opens a new one. A replaced session
// keeps its TCP flows until it expires; UDP flows move to the new session on
// their next datagram.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "dataplane/dataplane_worker.h"
#include "dataplane/flow_table.h"
#include "dataplane/replay_window.h"
#include "dataplane/tcp_edge.h"
#include "ferry/v1/common.pb.h"

namespace ferry::agent {

// A session as OpenSession granted it.
struct SessionGrant {
  uint64_t session_id = 0;
  std::string key;  // 32 bytes
  uint32_t service_id = 0;
  dataplane::SocketAddress relay_udp;
  std::string relay_stream;  // "host:port"
  absl::Time expires_at;
};

class AgentWorker : public dataplane::DataplaneWorker, public dataplane::TcpEdge::Owner {
 public:
  static constexpr absl::Duration kProbeInterval = absl::Seconds(1);
  static constexpr int kProbesMissed = 3;

  // `on_dead(exposure)` runs on the worker thread when the exposure's current
  // session stops answering probes; it must not block.
  AgentWorker(dataplane::WorkerOptions options, UniqueFd udp,
              std::function<void(size_t exposure)> on_dead);
  ~AgentWorker() override;

  // Worker thread (Post them): adds exposure number `exposure` (numbers are
  // dense, in order) listening on `fd` (a bound UDP socket, or a listening
  // TCP socket for PROTOCOL_TCP).
  void AddExposure(size_t exposure, std::string service, v1::Protocol protocol, UniqueFd fd);
  // Worker thread: adds ICMP exposure number `exposure` that takes echo
  // requests from `raw_fd`, a raw ICMP socket bound to the service's VIP
  // (agent/icmp_intercept.h). Each (source address, echo identifier) is one
  // flow; replies from the frames go back through `raw_fd` to that source.
  void AddEchoExposure(size_t exposure, std::string service, UniqueFd raw_fd);
  // Worker thread: makes `grant` the exposure's current session.
  void InstallSession(size_t exposure, const SessionGrant& grant);

  // Sessions currently installed (any thread).
  uint64_t sessions() const { return sessions_gauge_.load(std::memory_order_relaxed); }

  // TcpEdge::Owner.
  bool SendFlowFrame(dataplane::TcpEdge* edge, dataplane::FrameType type, uint8_t flags,
                     absl::Span<const uint8_t> payload) override;
  void EdgeDone(dataplane::TcpEdge* edge, bool reset) override;
  bool TransportCongested(dataplane::TcpEdge* edge) override;

 protected:
  void HandleFrame(absl::Span<uint8_t> frame, const dataplane::Origin& origin) override;
  void OnTick() override;
  void OnStreamClosed(dataplane::StreamConn* conn) override;
  void OnStreamWritable(dataplane::StreamConn* conn) override;
  void AfterEvents() override;

 private:
  struct Session {
    SessionGrant grant;
    size_t exposure = 0;
    std::vector<dataplane::HopAead> aead;  // one (the worker's)
    dataplane::ReplayWindow probe_window;
    int64_t installed_ns = 0;
    int64_t last_ack_ns = 0;
    int64_t last_probe_ns = 0;
    bool reported_dead = false;
  };
  struct Exposure;
  struct ListenerHandler : public dataplane::EventLoop::Handler {
    AgentWorker* worker = nullptr;
    Exposure* exposure = nullptr;
    void OnEvents(uint32_t events) override;
  };
  struct SocketAddressHash {
    size_t operator()(const dataplane::SocketAddress& a) const {
      return dataplane::HashSocketAddress(a);
    }
  };
  struct Exposure {
    size_t index = 0;
    std::string service;
    v1::Protocol protocol = v1::PROTOCOL_UNSPECIFIED;
    // `fd` is a raw ICMP socket (intercept mode): datagrams in carry an IPv4
    // header, the client key is (source, echo identifier).
    bool raw_icmp = false;
    UniqueFd fd;
    ListenerHandler handler;
    Session* current = nullptr;
    absl::flat_hash_map<dataplane::SocketAddress, dataplane::FlowHandle, SocketAddressHash>
        udp_clients;
  };
  struct Flow {
    Exposure* exposure = nullptr;
    Session* session = nullptr;
    // UDP flows: the client's address; raw ICMP flows: its source address
    // with the echo identifier as the port.
    dataplane::SocketAddress client;
    dataplane::ReplayWindow from_relay;
    bool open_pending = true;  // UDP: send OPEN until the relay answers
    dataplane::StreamConn* conn = nullptr;
    std::unique_ptr<dataplane::TcpEdge> edge;  // TCP flows
  };

  void ReadUdpClients(Exposure* exposure);
  // A raw ICMP exposure's datagram of `n` bytes at `message`: moves the echo
  // request's ICMP message to `message` and sets `client`; false (counted)
  // for anything else.
  bool TakeEchoRequest(uint8_t* message, ssize_t* n, dataplane::SocketAddress* client);
  void AcceptTcpClients(Exposure* exposure);
  uint32_t NewFlowId();
  void SendProbe(Session* session);
  void EraseFlow(dataplane::FlowHandle handle);
  void RemoveSession(uint64_t session_id);

  const std::function<void(size_t)> on_dead_;
  std::vector<std::unique_ptr<Exposure>> exposures_;
  absl::flat_hash_map<uint64_t, std::unique_ptr<Session>> sessions_;
  dataplane::FlowTable<Flow> flows_;
  std::vector<std::unique_ptr<dataplane::TcpEdge>> retired_edges_;
  uint32_t next_flow_id_;
  std::atomic<uint64_t> sessions_gauge_{0};
};

}  // namespace ferry::agent
