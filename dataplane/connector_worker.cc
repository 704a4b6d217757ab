#include "dataplane/connector_worker.h"

#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "dataplane/big_endian.h"
#include "dataplane/hop_codec.h"
#include "dataplane/stream_conn.h"
#include "glog/logging.h"

namespace ferry::dataplane {
namespace {

uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// The Internet checksum of `data`.
uint16_t InternetChecksum(const uint8_t* data, size_t size) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < size; i += 2) sum += LoadBigEndian16(data + i);
  if (size % 2 == 1) sum += uint32_t{data[size - 1]} << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

constexpr size_t kIcmpHeaderSize = 8;

}  // namespace

size_t PickBackend(const std::vector<SocketAddress>& backends, uint64_t session_id,
                   uint32_t flow_id) {
  const uint64_t flow_hash = Mix64(session_id ^ Mix64(flow_id));
  size_t best = 0;
  uint64_t best_score = 0;
  for (size_t i = 0; i < backends.size(); ++i) {
    uint64_t score = Mix64(HashSocketAddress(backends[i]) ^ flow_hash);
    if (i == 0 || score > best_score) {
      best = i;
      best_score = score;
    }
  }
  return best;
}

void ConnectorWorker::BackendHandler::OnEvents(uint32_t /*events*/) { worker->ReadBackend(flow); }

ConnectorWorker::ConnectorWorker(WorkerOptions options, UniqueFd udp, UniqueFd stream_listener,
                                 WorkerSnapshots<RouteTable>* routes)
    : DataplaneWorker(options, std::move(udp), std::move(stream_listener), routes),
      flows_(FlowOptionsFor(options)) {}

ConnectorWorker::~ConnectorWorker() {
  flows_.ForEach([&](FlowHandle handle, const FlowKey&, Flow&) { EraseFlow(handle); });
  retired_edges_.clear();
}

void ConnectorWorker::HandleFrame(absl::Span<uint8_t> frame, const Origin& origin) {
  FrameResult<FrameView> view = DecodeFrame(frame);
  if (!view.ok()) {
    Drop(ToDropReason(view.error()));
    return;
  }
  const FrameHeader& header = view->header;
  SessionRef ref = FindSession(header.session_id);
  if (!ref || ref.hop != Hop::kConnector) {
    Drop(DropReason::kUnknownSession);
    return;
  }
  const SessionRoute& route = *ref.route;
  if (header.type != FrameType::kData && header.type != FrameType::kClose &&
      header.type != FrameType::kWindow) {
    Drop(DropReason::kUnexpectedType);
    return;
  }
  if (header.service_id != route.service_id) {
    Drop(DropReason::kServiceNotAllowed);
    return;
  }
  FlowHandle handle = flows_.Find(FlowKey{route.connector_session_id, header.flow_id});
  ReplayWindow fresh;
  ReplayWindow& window = handle == kNoFlow ? fresh : flows_.value(handle).from_relay;
  absl::Span<uint8_t> payload;
  DropReason reason;
  if (!OpenFrame(ref.aead(index()), window, header, frame, &payload, &reason)) {
    Drop(reason);
    return;
  }
  traffic_mut().CountIn(route.service_id, frame.size());
  if (handle == kNoFlow) {
    if (header.type != FrameType::kData || !header.has_open()) {
      Drop(DropReason::kUnknownFlow);
      if (header.type != FrameType::kClose) CloseToRelay(route, header.flow_id, origin);
      return;
    }
    handle = CreateFlow(ref, header, origin, &reason);
    if (handle == kNoFlow) {
      Drop(reason);
      CloseToRelay(route, header.flow_id, origin);
      return;
    }
    flows_.value(handle).from_relay = fresh;
  }
  Flow& flow = flows_.value(handle);
  if (origin.conn == nullptr) flow.relay = origin;
  flows_.Touch(handle, now_ns());
  ToBackend(handle, header, payload);
}

FlowHandle ConnectorWorker::CreateFlow(const SessionRef& ref, const FrameHeader& header,
                                       const Origin& origin, DropReason* reason) {
  const SessionRoute& route = *ref.route;
  const ServiceRoute* service = routes()->FindService(route.service_id);
  if (service == nullptr) {
    *reason = DropReason::kNoRoute;
    return kNoFlow;
  }
  if (service->backends.empty()) {
    *reason = DropReason::kNoBackend;
    return kNoFlow;
  }
  const bool tcp = service->protocol == v1::PROTOCOL_TCP;
  if (tcp != (origin.conn != nullptr)) {
    // TCP services ride stream transports and only they do.
    *reason = DropReason::kUnexpectedType;
    return kNoFlow;
  }
  const SocketAddress& backend =
      service->backends[PickBackend(service->backends, route.connector_session_id, header.flow_id)];

  FlowInsertResult result;
  FlowHandle handle =
      flows_.Insert(FlowKey{route.connector_session_id, header.flow_id}, now_ns(), &result);
  if (handle == kNoFlow) {
    *reason = DropReason::kFlowLimit;
    return kNoFlow;
  }
  Flow& flow = flows_.value(handle);
  flow.service_id = service->service_id;
  flow.protocol = service->protocol;
  flow.relay = origin;
  flow.backend = backend;

  if (tcp) {
    absl::StatusOr<UniqueFd> fd = ConnectTcp(backend.ToString());
    if (!fd.ok()) {
      LOG_EVERY_N(WARNING, 100) << "cannot connect to backend " << backend.ToString() << " of "
                                << service->name << ": " << fd.status();
      flows_.Erase(handle);
      *reason = DropReason::kSendFailed;
      return kNoFlow;
    }
    flow.edge = std::make_unique<TcpEdge>(loop(), *std::move(fd), /*connecting=*/true, pool(), this,
                                          /*initiator=*/false);
    flow.edge->tag = handle;
    if (absl::Status s = flow.edge->Start(); !s.ok()) {
      LOG_EVERY_N(WARNING, 100) << "backend connection to " << backend.ToString()
                                << " failed: " << s;
      flow.edge.reset();
      flows_.Erase(handle);
      *reason = DropReason::kSendFailed;
      return kNoFlow;
    }
  } else {
    const bool icmp = service->protocol == v1::PROTOCOL_ICMP;
    int fd =
        socket(backend.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
               icmp ? (backend.family() == AF_INET6 ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP}) : 0);
    if (fd < 0 || connect(fd, backend.get(), backend.length) != 0) {
      LOG_EVERY_N(WARNING, 100) << "cannot open a " << (icmp ? "ICMP" : "UDP")
                                << " socket to backend " << backend.ToString() << ": errno "
                                << errno
                                << (icmp ? " (ICMP needs net.ipv4.ping_group_range to include "
                                           "the connector's group)"
                                         : "");
      if (fd >= 0) close(fd);
      flows_.Erase(handle);
      *reason = DropReason::kSendFailed;
      return kNoFlow;
    }
    flow.socket.reset(fd);
    flow.handler.worker = this;
    flow.handler.flow = handle;
    if (absl::Status s = loop()->Add(fd, EPOLLIN, &flow.handler); !s.ok()) {
      LOG(WARNING) << "cannot watch a backend socket: " << s;
      flows_.Erase(handle);
      *reason = DropReason::kSendFailed;
      return kNoFlow;
    }
  }
  SetFlowCount(flows_.size());
  return handle;
}

void ConnectorWorker::ToBackend(FlowHandle handle, const FrameHeader& header,
                                absl::Span<uint8_t> payload) {
  Flow& flow = flows_.value(handle);
  if (flow.edge != nullptr) {
    switch (header.type) {
      case FrameType::kData:
        flow.edge->OnDataFrame(payload, header.has_fin());
        break;
      case FrameType::kWindow:
        flow.edge->OnWindowFrame(payload);
        break;
      case FrameType::kClose:
        flow.edge->OnCloseFrame();  // EdgeDone erases the flow
        break;
      default:
        break;
    }
    return;
  }
  if (header.type == FrameType::kClose) {
    EraseFlow(handle);
    return;
  }
  if (header.type != FrameType::kData || payload.empty()) return;
  if (flow.protocol == v1::PROTOCOL_ICMP) {
    if (payload.size() < kIcmpHeaderSize || payload[0] != ICMP_ECHO) {
      Drop(DropReason::kUnexpectedType);
      return;
    }
    flow.echo_id = LoadBigEndian16(payload.data() + 4);
  }
  if (send(flow.socket.get(), payload.data(), payload.size(), MSG_DONTWAIT) < 0) {
    Drop(errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS ? DropReason::kQueueFull
                                                                     : DropReason::kSendFailed);
  }
}

void ConnectorWorker::ReadBackend(FlowHandle handle) {
  Flow& flow = flows_.value(handle);
  const FlowKey& key = flows_.key(handle);
  SessionRef ref = FindSession(key.session_id);
  for (int i = 0; i < 32; ++i) {
    absl::Span<uint8_t> buffer = BeginSend(flow.relay);
    size_t room = PayloadRoom(buffer.size());
    ssize_t n =
        recv(flow.socket.get(), buffer.data() + kHeaderSize, room, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        // ECONNREFUSED: the backend port is closed; the next send retries.
        Drop(DropReason::kNoBackend);
        continue;
      }
      return;
    }
    if (static_cast<size_t>(n) > room) {
      Drop(DropReason::kTooLong);
      continue;
    }
    if (!ref) {
      Drop(DropReason::kUnknownSession);
      continue;
    }
    uint8_t* payload = buffer.data() + kHeaderSize;
    if (flow.protocol == v1::PROTOCOL_ICMP) {
      if (static_cast<size_t>(n) < kIcmpHeaderSize || payload[0] != ICMP_ECHOREPLY) continue;
      StoreBigEndian16(payload + 4, flow.echo_id);
      StoreBigEndian16(payload + 2, 0);
      StoreBigEndian16(payload + 2, InternetChecksum(payload, static_cast<size_t>(n)));
    }
    flows_.Touch(handle, now_ns());
    SendOnFlowFromBuffer(handle, *ref.route, buffer, static_cast<size_t>(n));
  }
}

bool ConnectorWorker::SendOnFlowFromBuffer(FlowHandle handle, const SessionRoute& route,
                                           absl::Span<uint8_t> buffer, size_t payload_size) {
  const Flow& flow = flows_.value(handle);
  FrameHeader out;
  out.type = FrameType::kData;
  out.session_id = route.connector_session_id;
  out.service_id = route.service_id;
  out.flow_id = flows_.key(handle).flow_id;
  out.counter = MakeCounter(Direction::kResponderToInitiator, NextSequence());
  DropReason reason;
  size_t size = SealFrame(route.connector_aead[index()], out, payload_size, buffer, &reason);
  if (size == 0) {
    Drop(reason);
    return false;
  }
  if (!FinishSend(flow.relay, size)) return false;
  traffic_mut().CountOut(route.service_id, size);
  return true;
}

bool ConnectorWorker::SendOnFlow(FlowHandle handle, FrameType type, uint8_t flags,
                                 absl::Span<const uint8_t> payload) {
  const FlowKey& key = flows_.key(handle);
  SessionRef ref = FindSession(key.session_id);
  if (!ref) return false;
  FrameHeader out;
  out.type = type;
  out.flags = flags;
  out.session_id = ref.route->connector_session_id;
  out.service_id = ref.route->service_id;
  out.flow_id = key.flow_id;
  out.counter = MakeCounter(Direction::kResponderToInitiator, NextSequence());
  return SendSealed(ref.aead(index()), out, payload, flows_.value(handle).relay);
}

bool ConnectorWorker::SendFlowFrame(TcpEdge* edge, FrameType type, uint8_t flags,
                                    absl::Span<const uint8_t> payload) {
  FlowHandle handle = static_cast<FlowHandle>(edge->tag);
  flows_.Touch(handle, now_ns());
  return SendOnFlow(handle, type, flags, payload);
}

void ConnectorWorker::EdgeDone(TcpEdge* edge, bool /*reset*/) {
  FlowHandle handle = static_cast<FlowHandle>(edge->tag);
  if (flows_.value(handle).edge.get() == edge) EraseFlow(handle);
}

bool ConnectorWorker::TransportCongested(TcpEdge* edge) {
  const Flow& flow = flows_.value(static_cast<FlowHandle>(edge->tag));
  return flow.relay.conn != nullptr && flow.relay.conn->over_low_water();
}

void ConnectorWorker::OnStreamWritable(StreamConn* conn) {
  flows_.ForEach([&](FlowHandle, const FlowKey&, Flow& flow) {
    if (flow.relay.conn == conn && flow.edge != nullptr) flow.edge->OnTransportWritable();
  });
}

void ConnectorWorker::CloseToRelay(const SessionRoute& route, uint32_t flow_id,
                                   const Origin& dest) {
  FrameHeader out;
  out.type = FrameType::kClose;
  out.session_id = route.connector_session_id;
  out.service_id = route.service_id;
  out.flow_id = flow_id;
  out.counter = MakeCounter(Direction::kResponderToInitiator, NextSequence());
  SendSealed(route.connector_aead[index()], out, {}, dest);
}

void ConnectorWorker::EraseFlow(FlowHandle handle) {
  Flow& flow = flows_.value(handle);
  if (flow.socket) loop()->Remove(flow.socket.get());
  if (flow.edge != nullptr) {
    // Taken out first, so that the EdgeDone it may call finds no edge here.
    std::unique_ptr<TcpEdge> edge = std::move(flow.edge);
    if (!edge->done()) edge->OnCloseFrame();  // closes its socket quietly
    retired_edges_.push_back(std::move(edge));
  }
  flows_.Erase(handle);
  SetFlowCount(flows_.size());
}

void ConnectorWorker::AfterEvents() { retired_edges_.clear(); }

void ConnectorWorker::OnTick() {
  const int64_t udp_idle = absl::ToInt64Nanoseconds(options().udp_idle_timeout);
  const int64_t stream_idle = absl::ToInt64Nanoseconds(options().stream_idle_timeout);
  size_t evicted = 0;
  flows_.ForEach([&](FlowHandle handle, const FlowKey&, Flow& flow) {
    int64_t idle = now_ns() - flows_.last_active_ns(handle);
    if (idle <= (flow.edge != nullptr ? stream_idle : udp_idle)) return;
    if (flow.edge != nullptr) {
      flow.edge->Reset();  // tells the agent; EdgeDone erases
      if (flows_.value(handle).edge != nullptr) EraseFlow(handle);
    } else {
      EraseFlow(handle);
    }
    ++evicted;
  });
  if (evicted > 0) CountEvictions(evicted);
}

void ConnectorWorker::OnStreamClosed(StreamConn* conn) {
  flows_.ForEach([&](FlowHandle handle, const FlowKey&, Flow& flow) {
    if (flow.relay.conn == conn) EraseFlow(handle);
  });
}

void ConnectorWorker::OnRoutesChanged() {
  const RouteTable* table = routes();
  flows_.ForEach([&](FlowHandle handle, const FlowKey& key, Flow& flow) {
    SessionRef ref = FindSession(key.session_id);
    if (!ref) {
      EraseFlow(handle);
      return;
    }
    if (flow.edge != nullptr) return;  // TCP connections keep their backend
    const ServiceRoute* service = table->FindService(flow.service_id);
    bool still_there = false;
    if (service != nullptr) {
      for (const SocketAddress& backend : service->backends) still_there |= backend == flow.backend;
    }
    if (!still_there) {
      // The agent re-opens the flow, onto a backend that is still routed.
      CloseToRelay(*ref.route, key.flow_id, flow.relay);
      EraseFlow(handle);
    }
  });
}

}  // namespace ferry::dataplane
