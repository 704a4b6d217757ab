#include "dataplane/relay_worker.h"

#include <cstring>
#include <utility>
#include <vector>

#include "dataplane/hop_codec.h"

namespace ferry::dataplane {
namespace {

bool IsFlowType(FrameType type) {
  return type == FrameType::kData || type == FrameType::kClose || type == FrameType::kWindow;
}

FlowTableOptions IndexOptions(const WorkerOptions& options) {
  FlowTableOptions out;
  out.capacity = options.flow_capacity;
  out.max_flows_per_session = options.flow_capacity;
  return out;
}

FlowTableOptions ProbeOptions() {
  FlowTableOptions out;
  out.capacity = 4096;
  out.max_flows_per_session = 1;
  return out;
}

}  // namespace

RelayWorker::RelayWorker(WorkerOptions options, UniqueFd udp, UniqueFd stream_listener,
                         WorkerSnapshots<RouteTable>* routes)
    : DataplaneWorker(options, std::move(udp), std::move(stream_listener), routes),
      flows_(FlowOptionsFor(options)),
      upstream_(IndexOptions(options)),
      probes_(ProbeOptions()),
      next_upstream_(0) {}

void RelayWorker::HandleFrame(absl::Span<uint8_t> frame, const Origin& origin) {
  FrameResult<FrameView> view = DecodeFrame(frame);
  if (!view.ok()) {
    Drop(ToDropReason(view.error()));
    return;
  }
  const FrameHeader& header = view->header;
  SessionRef ref = FindSession(header.session_id);
  if (!ref) {
    Drop(DropReason::kUnknownSession);
    return;
  }
  if (ref.hop == Hop::kAgent) {
    FromAgent(ref, header, frame, origin);
  } else {
    FromConnector(ref, header, frame);
  }
}

void RelayWorker::FromAgent(const SessionRef& ref, const FrameHeader& header,
                            absl::Span<uint8_t> frame, const Origin& origin) {
  const SessionRoute& route = *ref.route;
  if (header.type == FrameType::kProbe) {
    AnswerProbe(ref, header, frame, origin);
    return;
  }
  if (!IsFlowType(header.type)) {
    Drop(DropReason::kUnexpectedType);
    return;
  }
  if (header.service_id != route.service_id) {
    Drop(DropReason::kServiceNotAllowed);
    return;
  }
  FlowHandle handle = flows_.Find(FlowKey{route.agent_session_id, header.flow_id});
  ReplayWindow fresh;
  ReplayWindow& window = handle == kNoFlow ? fresh : flows_.value(handle).from_agent;
  absl::Span<uint8_t> payload;
  DropReason reason;
  if (!OpenFrame(ref.aead(index()), window, header, frame, &payload, &reason)) {
    Drop(reason);
    return;
  }
  traffic_mut().CountIn(route.service_id, frame.size());
  if (handle == kNoFlow) {
    if (header.type != FrameType::kData || !header.has_open()) {
      // No state for it (it idled out, or this relay restarted): tell the
      // agent, which then opens the flow again.
      Drop(DropReason::kUnknownFlow);
      if (header.type != FrameType::kClose) CloseToAgent(route, header.flow_id, origin);
      return;
    }
    handle = CreateFlow(ref, header.flow_id, origin, &reason);
    if (handle == kNoFlow) {
      Drop(reason);
      CloseToAgent(route, header.flow_id, origin);
      return;
    }
    flows_.value(handle).from_agent = fresh;
  }
  Flow& flow = flows_.value(handle);
  if (origin.conn == nullptr && !flow.stream) flow.agent = origin;  // the agent may roam
  flows_.Touch(handle, now_ns());
  if (flow.agent_fin && header.type == FrameType::kData && !payload.empty()) {
    Drop(DropReason::kFlowClosed);
    return;
  }
  if (header.has_fin()) flow.agent_fin = true;
  SendOnward(handle, route, header, payload, Hop::kConnector);
}

void RelayWorker::FromConnector(const SessionRef& ref, const FrameHeader& header,
                                absl::Span<uint8_t> frame) {
  const SessionRoute& route = *ref.route;
  if (!IsFlowType(header.type)) {
    Drop(DropReason::kUnexpectedType);
    return;
  }
  FlowHandle index_handle = upstream_.Find(FlowKey{route.connector_session_id, header.flow_id});
  if (index_handle == kNoFlow) {
    Drop(DropReason::kUnknownFlow);
    return;
  }
  FlowHandle handle = upstream_.value(index_handle);
  Flow& flow = flows_.value(handle);
  absl::Span<uint8_t> payload;
  DropReason reason;
  if (!OpenFrame(ref.aead(index()), flow.from_connector, header, frame, &payload, &reason)) {
    Drop(reason);
    return;
  }
  traffic_mut().CountIn(route.service_id, frame.size());
  flows_.Touch(handle, now_ns());
  if (header.has_fin()) flow.connector_fin = true;
  SendOnward(handle, route, header, payload, Hop::kAgent);
}

void RelayWorker::SendOnward(FlowHandle handle, const SessionRoute& route, const FrameHeader& in,
                             absl::Span<const uint8_t> payload, Hop to) {
  Flow& flow = flows_.value(handle);
  const uint32_t agent_flow = flows_.key(handle).flow_id;
  FrameHeader out;
  out.type = in.type;
  out.flags = in.flags;
  out.service_id = route.service_id;
  bool sent;
  if (to == Hop::kConnector) {
    out.session_id = route.connector_session_id;
    out.flow_id = flow.upstream_flow;
    out.counter = MakeCounter(Direction::kInitiatorToResponder, NextSequence());
    sent = SendSealed(route.connector_aead[index()], out, payload, ConnectorDest(route, flow));
  } else {
    out.session_id = route.agent_session_id;
    out.flow_id = agent_flow;
    out.counter = MakeCounter(Direction::kResponderToInitiator, NextSequence());
    sent = SendSealed(route.agent_aead[index()], out, payload, flow.agent);
  }
  if (!sent && flow.stream && in.type != FrameType::kClose) {
    // A stream flow cannot lose a frame and carry on: reset it both ways.
    CloseToAgent(route, agent_flow, flow.agent);
    CloseToConnector(route, flow);
    EraseFlow(handle);
    return;
  }
  if (in.type == FrameType::kClose || (flow.agent_fin && flow.connector_fin)) EraseFlow(handle);
}

Origin RelayWorker::ConnectorDest(const SessionRoute& route, const Flow& flow) {
  Origin dest;
  if (flow.stream) {
    dest.conn = flow.connector_conn;
  } else {
    dest.udp = route.connector_udp;
  }
  return dest;
}

void RelayWorker::AnswerProbe(const SessionRef& ref, const FrameHeader& header,
                              absl::Span<uint8_t> frame, const Origin& origin) {
  FlowKey key{ref.session_id(), 0};
  FlowHandle handle = probes_.Find(key);
  ReplayWindow fresh;
  ReplayWindow& window = handle == kNoFlow ? fresh : probes_.value(handle).window;
  absl::Span<uint8_t> payload;
  DropReason reason;
  if (!OpenFrame(ref.aead(index()), window, header, frame, &payload, &reason)) {
    Drop(reason);
    return;
  }
  if (handle == kNoFlow) {
    FlowInsertResult result;
    handle = probes_.Insert(key, now_ns(), &result);
    if (handle != kNoFlow) probes_.value(handle).window = fresh;
  } else {
    probes_.Touch(handle, now_ns());
  }
  FrameHeader out;
  out.type = FrameType::kProbeAck;
  out.session_id = header.session_id;
  out.service_id = header.service_id;
  out.flow_id = header.flow_id;
  out.counter = MakeCounter(Direction::kResponderToInitiator, NextSequence());
  SendSealed(ref.aead(index()), out, payload, origin);
}

FlowHandle RelayWorker::CreateFlow(const SessionRef& ref, uint32_t flow_id, const Origin& origin,
                                   DropReason* reason) {
  const SessionRoute& route = *ref.route;
  StreamConn* upstream_conn = nullptr;
  if (origin.conn != nullptr) {
    if (route.connector_stream_address.empty()) {
      *reason = DropReason::kNoRoute;
      return kNoFlow;
    }
    upstream_conn = StreamTo(route.connector_stream_address);
    if (upstream_conn == nullptr) {
      *reason = DropReason::kNoRoute;
      return kNoFlow;
    }
  }
  FlowInsertResult result;
  FlowHandle handle = flows_.Insert(FlowKey{route.agent_session_id, flow_id}, now_ns(), &result);
  if (handle == kNoFlow) {
    *reason = DropReason::kFlowLimit;
    return kNoFlow;
  }
  // An upstream id that comes back to this worker and is free on the
  // connector session.
  const uint32_t workers = static_cast<uint32_t>(options().workers);
  FlowHandle index_handle = kNoFlow;
  uint32_t upstream_flow = 0;
  for (int attempt = 0; attempt < 64 && index_handle == kNoFlow; ++attempt) {
    ++next_upstream_;
    upstream_flow = static_cast<uint32_t>(index()) + workers * next_upstream_;
    if (upstream_flow == 0 || upstream_flow / workers != next_upstream_) {
      next_upstream_ = 0;  // wrapped
      continue;
    }
    FlowInsertResult index_result;
    index_handle = upstream_.Insert(FlowKey{route.connector_session_id, upstream_flow}, now_ns(),
                                    &index_result);
    if (index_result == FlowInsertResult::kExists) index_handle = kNoFlow;
    if (index_result == FlowInsertResult::kTableFull) break;
  }
  if (index_handle == kNoFlow) {
    flows_.Erase(handle);
    *reason = DropReason::kFlowLimit;
    return kNoFlow;
  }
  upstream_.value(index_handle) = handle;
  Flow& flow = flows_.value(handle);
  flow.connector_session = route.connector_session_id;
  flow.upstream_flow = upstream_flow;
  flow.service_id = route.service_id;
  flow.stream = origin.conn != nullptr;
  flow.agent = origin;
  flow.connector_conn = upstream_conn;
  SetFlowCount(flows_.size());
  return handle;
}

void RelayWorker::EraseFlow(FlowHandle handle) {
  const Flow& flow = flows_.value(handle);
  FlowHandle index_handle = upstream_.Find(FlowKey{flow.connector_session, flow.upstream_flow});
  if (index_handle != kNoFlow) upstream_.Erase(index_handle);
  flows_.Erase(handle);
  SetFlowCount(flows_.size());
}

void RelayWorker::CloseToAgent(const SessionRoute& route, uint32_t flow_id, const Origin& dest) {
  FrameHeader out;
  out.type = FrameType::kClose;
  out.session_id = route.agent_session_id;
  out.service_id = route.service_id;
  out.flow_id = flow_id;
  out.counter = MakeCounter(Direction::kResponderToInitiator, NextSequence());
  SendSealed(route.agent_aead[index()], out, {}, dest);
}

void RelayWorker::CloseToConnector(const SessionRoute& route, const Flow& flow) {
  FrameHeader out;
  out.type = FrameType::kClose;
  out.session_id = route.connector_session_id;
  out.service_id = route.service_id;
  out.flow_id = flow.upstream_flow;
  out.counter = MakeCounter(Direction::kInitiatorToResponder, NextSequence());
  SendSealed(route.connector_aead[index()], out, {}, ConnectorDest(route, flow));
}

void RelayWorker::OnTick() {
  const int64_t udp_idle = absl::ToInt64Nanoseconds(options().udp_idle_timeout);
  const int64_t stream_idle = absl::ToInt64Nanoseconds(options().stream_idle_timeout);
  size_t evicted = 0;
  flows_.ForEach([&](FlowHandle handle, const FlowKey& key, Flow& flow) {
    int64_t idle = now_ns() - flows_.last_active_ns(handle);
    if (idle <= (flow.stream ? stream_idle : udp_idle)) return;
    SessionRef ref = FindSession(key.session_id);
    if (ref) {
      CloseToConnector(*ref.route, flow);
      CloseToAgent(*ref.route, key.flow_id, flow.agent);
    }
    EraseFlow(handle);
    ++evicted;
  });
  probes_.SweepIdle(now_ns(), udp_idle, probes_.capacity(),
                    [](FlowHandle, const FlowKey&, Probe&) {});
  if (evicted > 0) CountEvictions(evicted);
}

void RelayWorker::OnStreamClosed(StreamConn* conn) {
  flows_.ForEach([&](FlowHandle handle, const FlowKey& key, Flow& flow) {
    if (flow.agent.conn != conn && flow.connector_conn != conn) return;
    SessionRef ref = FindSession(key.session_id);
    if (ref) {
      if (flow.agent.conn == conn && flow.connector_conn != conn) {
        CloseToConnector(*ref.route, flow);
      } else if (flow.agent.conn != conn) {
        CloseToAgent(*ref.route, key.flow_id, flow.agent);
      }
    }
    EraseFlow(handle);
  });
}

void RelayWorker::OnRoutesChanged() {
  // Flows of sessions that left the routes end with their session.
  flows_.ForEach([&](FlowHandle handle, const FlowKey& key, Flow&) {
    if (!FindSession(key.session_id)) EraseFlow(handle);
  });
}

}  // namespace ferry::dataplane
