#include "agent/agent_worker.h"

#include <netinet/in.h>
#include <openssl/rand.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "agent/icmp_intercept.h"
#include "dataplane/big_endian.h"
#include "dataplane/hop_codec.h"
#include "dataplane/stream_conn.h"
#include "glog/logging.h"

namespace ferry::agent {

using dataplane::Direction;
using dataplane::DropReason;
using dataplane::FlowHandle;
using dataplane::FlowKey;
using dataplane::FrameHeader;
using dataplane::FrameType;
using dataplane::kHeaderSize;
using dataplane::kNoFlow;
using dataplane::MakeCounter;
using dataplane::Origin;

namespace {

Origin RelayUdp(const SessionGrant& grant) {
  Origin origin;
  origin.udp = grant.relay_udp;
  return origin;
}

}  // namespace

void AgentWorker::ListenerHandler::OnEvents(uint32_t /*events*/) {
  if (exposure->protocol == v1::PROTOCOL_TCP) {
    worker->AcceptTcpClients(exposure);
  } else {
    worker->ReadUdpClients(exposure);
  }
}

AgentWorker::AgentWorker(dataplane::WorkerOptions options, UniqueFd udp,
                         std::function<void(size_t)> on_dead)
    : DataplaneWorker(options, std::move(udp), UniqueFd(), /*routes=*/nullptr),
      on_dead_(std::move(on_dead)),
      flows_(dataplane::FlowOptionsFor(options)) {
  // Flow ids start at a random point so that a restarted agent does not
  // reuse the ids of its previous life while the relay still holds them.
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&next_flow_id_), sizeof(next_flow_id_)) != 1) {
    next_flow_id_ = static_cast<uint32_t>(absl::ToUnixNanos(absl::Now()));
  }
}

AgentWorker::~AgentWorker() {
  flows_.ForEach([&](FlowHandle handle, const FlowKey&, Flow&) { EraseFlow(handle); });
  retired_edges_.clear();
  for (auto& exposure : exposures_) {
    if (exposure->fd) loop()->Remove(exposure->fd.get());
  }
}

void AgentWorker::AddExposure(size_t index, std::string service, v1::Protocol protocol,
                              UniqueFd fd) {
  auto exposure = std::make_unique<Exposure>();
  exposure->index = index;
  exposure->service = std::move(service);
  exposure->protocol = protocol;
  exposure->fd = std::move(fd);
  exposure->handler.worker = this;
  exposure->handler.exposure = exposure.get();
  exposure->udp_clients.reserve(1024);
  if (absl::Status s = loop()->Add(exposure->fd.get(), EPOLLIN, &exposure->handler); !s.ok()) {
    LOG(ERROR) << "Cannot serve " << exposure->service << ": " << s;
    return;
  }
  if (exposures_.size() <= index) exposures_.resize(index + 1);
  exposures_[index] = std::move(exposure);
}

void AgentWorker::AddEchoExposure(size_t index, std::string service, UniqueFd raw_fd) {
  AddExposure(index, std::move(service), v1::PROTOCOL_ICMP, std::move(raw_fd));
  if (index < exposures_.size() && exposures_[index] != nullptr) {
    exposures_[index]->raw_icmp = true;
  }
}

void AgentWorker::InstallSession(size_t index, const SessionGrant& grant) {
  if (index >= exposures_.size() || exposures_[index] == nullptr) return;
  Exposure* exposure = exposures_[index].get();
  absl::StatusOr<dataplane::HopAead> aead = dataplane::HopAead::Create(
      dataplane::AeadAlgorithm::kAes256Gcm,
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(grant.key.data()), grant.key.size()),
      dataplane::HopRole::kInitiator);
  if (!aead.ok()) {
    LOG(ERROR) << "Session for " << exposure->service << " has an unusable key: " << aead.status();
    return;
  }
  auto session = std::make_unique<Session>();
  session->grant = grant;
  session->exposure = index;
  session->aead.push_back(*std::move(aead));
  session->installed_ns = now_ns();
  Session* previous = exposure->current;
  exposure->current = session.get();
  sessions_[grant.session_id] = std::move(session);
  if (previous != nullptr && previous->reported_dead) RemoveSession(previous->grant.session_id);
  sessions_gauge_.store(sessions_.size(), std::memory_order_relaxed);
  SendProbe(exposure->current);
}

uint32_t AgentWorker::NewFlowId() {
  ++next_flow_id_;
  if (next_flow_id_ == 0) ++next_flow_id_;  // 0 is the session's probe flow
  return next_flow_id_;
}

void AgentWorker::ReadUdpClients(Exposure* exposure) {
  for (int i = 0; i < 64; ++i) {
    Session* session = exposure->current;
    Origin dest;
    absl::Span<uint8_t> buffer;
    uint8_t discard[1];
    if (session != nullptr) {
      dest = RelayUdp(session->grant);
      buffer = BeginSend(dest);
    }
    sockaddr_storage peer;
    socklen_t peer_len = sizeof(peer);
    const size_t room = dataplane::PayloadRoom(buffer.size());
    ssize_t n =
        session == nullptr
            ? recvfrom(exposure->fd.get(), discard, sizeof(discard), MSG_DONTWAIT,
                       reinterpret_cast<sockaddr*>(&peer), &peer_len)
            : recvfrom(exposure->fd.get(), buffer.data() + kHeaderSize, room,
                       MSG_DONTWAIT | MSG_TRUNC, reinterpret_cast<sockaddr*>(&peer), &peer_len);
    if (n < 0) return;  // EAGAIN, or an ICMP error of an earlier send
    if (session == nullptr) {
      Drop(DropReason::kNoRoute);
      continue;
    }
    if (static_cast<size_t>(n) > room) {
      Drop(DropReason::kTooLong);
      continue;
    }
    dataplane::SocketAddress client =
        dataplane::SocketAddress::From(reinterpret_cast<sockaddr*>(&peer), peer_len);
    if (exposure->raw_icmp && !TakeEchoRequest(buffer.data() + kHeaderSize, &n, &client)) continue;
    FlowHandle handle = kNoFlow;
    auto it = exposure->udp_clients.find(client);
    if (it != exposure->udp_clients.end()) {
      handle = it->second;
      if (flows_.value(handle).session != session) {
        // The session was replaced: the client's flow moves to the new one.
        EraseFlow(handle);
        handle = kNoFlow;
      }
    }
    if (handle == kNoFlow) {
      dataplane::FlowInsertResult result;
      handle = flows_.Insert(FlowKey{session->grant.session_id, NewFlowId()}, now_ns(), &result);
      if (handle == kNoFlow) {
        Drop(DropReason::kFlowLimit);
        continue;
      }
      Flow& flow = flows_.value(handle);
      flow.exposure = exposure;
      flow.session = session;
      flow.client = client;
      exposure->udp_clients[client] = handle;
      SetFlowCount(flows_.size());
    }
    Flow& flow = flows_.value(handle);
    flows_.Touch(handle, now_ns());
    FrameHeader header;
    header.type = FrameType::kData;
    header.flags = flow.open_pending ? dataplane::kFlagOpen : 0;
    header.session_id = session->grant.session_id;
    header.service_id = session->grant.service_id;
    header.flow_id = flows_.key(handle).flow_id;
    header.counter = MakeCounter(Direction::kInitiatorToResponder, NextSequence());
    DropReason reason;
    size_t size =
        dataplane::SealFrame(session->aead[0], header, static_cast<size_t>(n), buffer, &reason);
    if (size == 0) {
      Drop(reason);
      continue;
    }
    if (FinishSend(dest, size)) traffic_mut().CountOut(header.service_id, size);
  }
}

bool AgentWorker::TakeEchoRequest(uint8_t* message, ssize_t* n, dataplane::SocketAddress* client) {
  EchoRequest request;
  if (!ParseEchoRequest(absl::MakeConstSpan(message, static_cast<size_t>(*n)), &request)) {
    Drop(DropReason::kUnexpectedType);
    return false;
  }
  std::memmove(message, message + request.icmp_offset, request.icmp_size);
  *n = static_cast<ssize_t>(request.icmp_size);
  sockaddr_in source = {};
  source.sin_family = AF_INET;
  source.sin_addr = request.source;
  source.sin_port = htons(request.identifier);
  *client = dataplane::SocketAddress::From(reinterpret_cast<sockaddr*>(&source), sizeof(source));
  return true;
}

void AgentWorker::AcceptTcpClients(Exposure* exposure) {
  for (int i = 0; i < 64; ++i) {
    int fd = accept4(exposure->fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    UniqueFd client(fd);
    Session* session = exposure->current;
    if (session == nullptr || session->grant.relay_stream.empty()) {
      Drop(DropReason::kNoRoute);
      continue;  // closes the client connection
    }
    dataplane::StreamConn* conn = StreamTo(session->grant.relay_stream);
    if (conn == nullptr) continue;
    dataplane::FlowInsertResult result;
    FlowHandle handle =
        flows_.Insert(FlowKey{session->grant.session_id, NewFlowId()}, now_ns(), &result);
    if (handle == kNoFlow) {
      Drop(DropReason::kFlowLimit);
      continue;
    }
    Flow& flow = flows_.value(handle);
    flow.exposure = exposure;
    flow.session = session;
    flow.conn = conn;
    flow.edge = std::make_unique<dataplane::TcpEdge>(loop(), std::move(client),
                                                     /*connecting=*/false, pool(), this,
                                                     /*initiator=*/true);
    flow.edge->tag = handle;
    SetFlowCount(flows_.size());
    if (absl::Status s = flow.edge->Start(); !s.ok()) {
      LOG_EVERY_N(WARNING, 100) << "Cannot serve a client of " << exposure->service << ": " << s;
      EraseFlow(handle);
    }
  }
}

bool AgentWorker::SendFlowFrame(dataplane::TcpEdge* edge, FrameType type, uint8_t flags,
                                absl::Span<const uint8_t> payload) {
  FlowHandle handle = static_cast<FlowHandle>(edge->tag);
  Flow& flow = flows_.value(handle);
  if (flow.conn == nullptr || flow.session == nullptr) return false;
  flows_.Touch(handle, now_ns());
  Origin dest;
  dest.conn = flow.conn;
  FrameHeader header;
  header.type = type;
  header.flags = flags;
  header.session_id = flow.session->grant.session_id;
  header.service_id = flow.session->grant.service_id;
  header.flow_id = flows_.key(handle).flow_id;
  header.counter = MakeCounter(Direction::kInitiatorToResponder, NextSequence());
  return SendSealed(flow.session->aead[0], header, payload, dest);
}

void AgentWorker::EdgeDone(dataplane::TcpEdge* edge, bool /*reset*/) {
  FlowHandle handle = static_cast<FlowHandle>(edge->tag);
  if (flows_.value(handle).edge.get() == edge) EraseFlow(handle);
}

bool AgentWorker::TransportCongested(dataplane::TcpEdge* edge) {
  const Flow& flow = flows_.value(static_cast<FlowHandle>(edge->tag));
  return flow.conn != nullptr && flow.conn->over_low_water();
}

void AgentWorker::OnStreamWritable(dataplane::StreamConn* conn) {
  flows_.ForEach([&](FlowHandle, const FlowKey&, Flow& flow) {
    if (flow.conn == conn && flow.edge != nullptr) flow.edge->OnTransportWritable();
  });
}

void AgentWorker::HandleFrame(absl::Span<uint8_t> frame, const Origin& /*origin*/) {
  dataplane::FrameResult<dataplane::FrameView> view = dataplane::DecodeFrame(frame);
  if (!view.ok()) {
    Drop(dataplane::ToDropReason(view.error()));
    return;
  }
  const FrameHeader& header = view->header;
  auto session_it = sessions_.find(header.session_id);
  if (session_it == sessions_.end()) {
    Drop(DropReason::kUnknownSession);
    return;
  }
  Session* session = session_it->second.get();
  absl::Span<uint8_t> payload;
  DropReason reason;
  if (header.type == FrameType::kProbeAck) {
    if (!dataplane::OpenFrame(session->aead[0], session->probe_window, header, frame, &payload,
                              &reason)) {
      Drop(reason);
      return;
    }
    session->last_ack_ns = now_ns();
    return;
  }
  FlowHandle handle = flows_.Find(FlowKey{header.session_id, header.flow_id});
  if (handle == kNoFlow) {
    Drop(DropReason::kUnknownFlow);
    return;
  }
  Flow& flow = flows_.value(handle);
  if (!dataplane::OpenFrame(session->aead[0], flow.from_relay, header, frame, &payload, &reason)) {
    Drop(reason);
    return;
  }
  traffic_mut().CountIn(header.service_id, frame.size());
  flows_.Touch(handle, now_ns());
  if (flow.edge != nullptr) {
    switch (header.type) {
      case FrameType::kData:
        flow.edge->OnDataFrame(payload, header.has_fin());
        break;
      case FrameType::kWindow:
        flow.edge->OnWindowFrame(payload);
        break;
      case FrameType::kClose:
        flow.edge->OnCloseFrame();
        break;
      default:
        Drop(DropReason::kUnexpectedType);
        break;
    }
    return;
  }
  switch (header.type) {
    case FrameType::kData:
      flow.open_pending = false;
      if (flow.exposure->raw_icmp && !IsEchoReply(payload)) {
        Drop(DropReason::kUnexpectedType);
        break;
      }
      if (sendto(flow.exposure->fd.get(), payload.data(), payload.size(), MSG_DONTWAIT,
                 flow.client.get(), flow.client.length) < 0) {
        Drop(DropReason::kSendFailed);
      }
      break;
    case FrameType::kClose:
      // The far side lost the flow (idle, restart, backend change): open it
      // again with the client's next datagram.
      flow.open_pending = true;
      break;
    default:
      Drop(DropReason::kUnexpectedType);
      break;
  }
}

void AgentWorker::SendProbe(Session* session) {
  Origin dest = RelayUdp(session->grant);
  absl::Span<uint8_t> buffer = BeginSend(dest);
  if (buffer.size() < dataplane::FrameSize(8)) return;
  dataplane::StoreBigEndian64(buffer.data() + kHeaderSize, static_cast<uint64_t>(now_ns()));
  FrameHeader header;
  header.type = FrameType::kProbe;
  header.session_id = session->grant.session_id;
  header.service_id = session->grant.service_id;
  header.flow_id = 0;
  header.counter = MakeCounter(Direction::kInitiatorToResponder, NextSequence());
  DropReason reason;
  size_t size = dataplane::SealFrame(session->aead[0], header, 8, buffer, &reason);
  if (size == 0) {
    Drop(reason);
    return;
  }
  FinishSend(dest, size);
  session->last_probe_ns = now_ns();
}

void AgentWorker::OnTick() {
  const int64_t interval = absl::ToInt64Nanoseconds(kProbeInterval);
  const int64_t now = now_ns();
  std::vector<uint64_t> expired;
  for (auto& [id, session] : sessions_) {
    Exposure* exposure = exposures_[session->exposure].get();
    const bool current = exposure != nullptr && exposure->current == session.get();
    if (!current) {
      if (absl::FromUnixNanos(now) >= session->grant.expires_at) expired.push_back(id);
      continue;
    }
    if (now - session->last_probe_ns >= interval) SendProbe(session.get());
    const int64_t heard = std::max(session->last_ack_ns, session->installed_ns);
    if (!session->reported_dead && now - heard > kProbesMissed * interval + interval / 2) {
      session->reported_dead = true;
      LOG(WARNING) << "Session for " << exposure->service << " stopped answering probes; "
                   << "opening a new one";
      on_dead_(session->exposure);
    }
  }
  for (uint64_t id : expired) RemoveSession(id);

  const int64_t udp_idle = absl::ToInt64Nanoseconds(options().udp_idle_timeout);
  size_t evicted = 0;
  flows_.ForEach([&](FlowHandle handle, const FlowKey&, Flow& flow) {
    if (flow.edge == nullptr && now - flows_.last_active_ns(handle) > udp_idle) {
      EraseFlow(handle);
      ++evicted;
    }
  });
  if (evicted > 0) CountEvictions(evicted);
}

void AgentWorker::RemoveSession(uint64_t session_id) {
  auto it = sessions_.find(session_id);
  if (it == sessions_.end()) return;
  Session* session = it->second.get();
  flows_.ForEach([&](FlowHandle handle, const FlowKey&, Flow& flow) {
    if (flow.session == session) EraseFlow(handle);
  });
  for (auto& exposure : exposures_) {
    if (exposure != nullptr && exposure->current == session) exposure->current = nullptr;
  }
  sessions_.erase(it);
  sessions_gauge_.store(sessions_.size(), std::memory_order_relaxed);
}

void AgentWorker::EraseFlow(FlowHandle handle) {
  Flow& flow = flows_.value(handle);
  if (flow.edge != nullptr) {
    std::unique_ptr<dataplane::TcpEdge> edge = std::move(flow.edge);
    if (!edge->done()) edge->OnCloseFrame();
    retired_edges_.push_back(std::move(edge));
  } else if (flow.exposure != nullptr) {
    auto it = flow.exposure->udp_clients.find(flow.client);
    if (it != flow.exposure->udp_clients.end() && it->second == handle) {
      flow.exposure->udp_clients.erase(it);
    }
  }
  flows_.Erase(handle);
  SetFlowCount(flows_.size());
}

void AgentWorker::OnStreamClosed(dataplane::StreamConn* conn) {
  flows_.ForEach([&](FlowHandle handle, const FlowKey&, Flow& flow) {
    if (flow.conn == conn) EraseFlow(handle);
  });
}

void AgentWorker::AfterEvents() { retired_edges_.clear(); }

}  // namespace ferry::agent
