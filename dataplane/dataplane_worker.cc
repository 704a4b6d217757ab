#include "dataplane/dataplane_worker.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "dataplane/frame.h"
#include "dataplane/hop_codec.h"
#include "glog/logging.h"

namespace ferry::dataplane {
namespace {

int64_t RealtimeNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Rounds of recvmmsg per readiness event before yielding to other sockets.
constexpr int kMaxReadRounds = 8;

}  // namespace

FlowTableOptions FlowOptionsFor(const WorkerOptions& options) {
  FlowTableOptions out;
  out.capacity = options.flow_capacity;
  out.max_flows_per_session = options.max_flows_per_session;
  return out;
}

DataplaneWorker::DataplaneWorker(WorkerOptions options, UniqueFd udp, UniqueFd stream_listener,
                                 WorkerSnapshots<RouteTable>* routes)
    : options_(options),
      udp_(std::move(udp)),
      stream_listener_(std::move(stream_listener)),
      routes_(routes),
      recv_(options.batch_size, options.datagram_size),
      send_(options.batch_size, options.datagram_size),
      pool_(options.pool_chunk_size, options.pool_chunks),
      scratch_(kMaxFrameSize) {}

DataplaneWorker::~DataplaneWorker() {
  // Streams unregister from the loop in their destructors; the loop goes last.
  streams_by_address_.clear();
  streams_.clear();
}

absl::Status DataplaneWorker::Init() {
  absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create();
  if (!loop.ok()) return loop.status();
  loop_ = *std::move(loop);
  now_ns_ = RealtimeNs();
  if (udp_) {
    if (absl::Status s = loop_->Add(udp_.get(), EPOLLIN, this); !s.ok()) return s;
  }
  if (stream_listener_) {
    if (absl::Status s = loop_->Add(stream_listener_.get(), EPOLLIN, &listener_handler_); !s.ok()) {
      return s;
    }
  }
  loop_->SetAfterEvents([this] { BetweenBatches(); });
  loop_->AddTimer(absl::Seconds(1), [this] {
    now_ns_ = RealtimeNs();
    OnTick();
  });
  BetweenBatches();
  return absl::OkStatus();
}

void DataplaneWorker::Run() {
  loop_->Run();
  if (routes_ != nullptr) routes_->Release(options_.index);
  table_ = nullptr;
}

void DataplaneWorker::Stop() {
  if (loop_ != nullptr) loop_->Stop();
}

uint64_t DataplaneWorker::NextSequence() {
  uint64_t floor = static_cast<uint64_t>(now_ns_);
  last_sequence_ = std::max(last_sequence_ + 1, floor);
  return last_sequence_;
}

void DataplaneWorker::OnEvents(uint32_t /*events*/) { ReadUdp(); }

void DataplaneWorker::ReadUdp() {
  now_ns_ = RealtimeNs();
  for (int round = 0; round < kMaxReadRounds; ++round) {
    int n = recv_.Receive(udp_.get());
    if (n <= 0) {
      if (n < 0) {
        LOG_EVERY_N(WARNING, 1000) << "recvmmsg failed: errno " << -n;
      }
      return;
    }
    for (int i = 0; i < n; ++i) {
      if (recv_.truncated(i)) {
        Drop(DropReason::kTooLong);
        continue;
      }
      Origin origin;
      origin.udp =
          SocketAddress::From(reinterpret_cast<const sockaddr*>(&recv_.peer(i)), recv_.peer_len(i));
      HandleFrame(recv_.data(i), origin);
    }
    if (static_cast<size_t>(n) < options_.batch_size) return;
    // A full batch: send what it produced before reading more.
    if (send_.size() > 0) {
      SendBatch::FlushResult r = send_.Flush(udp_.get());
      if (r.dropped > 0) Drop(DropReason::kQueueFull);
    }
  }
}

void DataplaneWorker::BetweenBatches() {
  AfterEvents();
  if (udp_ && send_.size() > 0) {
    SendBatch::FlushResult r = send_.Flush(udp_.get());
    if (r.dropped > 0) drops_.Increment(DropReason::kQueueFull, r.dropped);
  }
  if (routes_ != nullptr) {
    const RouteTable* table = routes_->Acquire(options_.index);
    if (table != table_) {
      table_ = table;
      if (table_ != nullptr) route_version_.store(table_->version(), std::memory_order_relaxed);
      OnRoutesChanged();
    }
  }
  // Streams closed during the round are deleted now that nothing refers to them.
  for (StreamConn* conn : closed_streams_) streams_.erase(conn);
  closed_streams_.clear();
}

absl::Span<uint8_t> DataplaneWorker::BeginSend(const Origin& dest) {
  if (dest.conn != nullptr) return absl::MakeSpan(scratch_);
  absl::Span<uint8_t> buffer = send_.Next();
  if (buffer.empty()) {
    SendBatch::FlushResult r = send_.Flush(udp_.get());
    if (r.dropped > 0) drops_.Increment(DropReason::kQueueFull, r.dropped);
    buffer = send_.Next();
  }
  return buffer;
}

bool DataplaneWorker::FinishSend(const Origin& dest, size_t length) {
  if (dest.conn != nullptr) {
    if (!dest.conn->Send(absl::MakeConstSpan(scratch_.data(), length))) {
      Drop(DropReason::kQueueFull);
      return false;
    }
    return true;
  }
  if (!udp_ || dest.udp.empty()) {
    Drop(DropReason::kSendFailed);
    return false;
  }
  send_.Commit(length, dest.udp.get(), dest.udp.length);
  return true;
}

bool DataplaneWorker::SendSealed(HopAead& aead, const FrameHeader& header,
                                 absl::Span<const uint8_t> payload, const Origin& dest) {
  if (dest.conn == nullptr && dest.udp.empty()) {
    Drop(DropReason::kNoRoute);
    return false;
  }
  absl::Span<uint8_t> buffer = BeginSend(dest);
  if (buffer.size() < FrameSize(payload.size())) {
    Drop(DropReason::kBufferTooSmall);
    return false;
  }
  if (!payload.empty()) std::memmove(buffer.data() + kHeaderSize, payload.data(), payload.size());
  DropReason reason;
  size_t size = SealFrame(aead, header, payload.size(), buffer, &reason);
  if (size == 0) {
    Drop(reason);
    return false;
  }
  if (!FinishSend(dest, size)) return false;
  traffic_.CountOut(header.service_id, size);
  return true;
}

void DataplaneWorker::AcceptStreams() {
  for (int i = 0; i < 64; ++i) {
    sockaddr_storage peer;
    socklen_t len = sizeof(peer);
    int fd = accept4(stream_listener_.get(), reinterpret_cast<sockaddr*>(&peer), &len,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        LOG_EVERY_N(WARNING, 100) << "accept on the stream listener failed: errno " << errno;
      }
      return;
    }
    AdoptStream(UniqueFd(fd), /*connecting=*/false,
                SocketAddress::From(reinterpret_cast<sockaddr*>(&peer), len).ToString());
  }
}

void DataplaneWorker::AdoptStream(UniqueFd fd, bool connecting, const std::string& peer) {
  auto conn = std::make_unique<StreamConn>(loop_.get(), std::move(fd), connecting, this, &pool_,
                                           options_.stream_queue_limit);
  if (absl::Status s = conn->Start(); !s.ok()) {
    LOG(WARNING) << "stream transport with " << peer << " could not start: " << s;
    return;
  }
  StreamConn* raw = conn.get();
  streams_.emplace(raw, std::move(conn));
  if (connecting) streams_by_address_[peer] = raw;
}

StreamConn* DataplaneWorker::StreamTo(const std::string& address) {
  auto it = streams_by_address_.find(address);
  if (it != streams_by_address_.end()) return it->second;
  absl::StatusOr<UniqueFd> fd = ConnectTcp(address);
  if (!fd.ok()) {
    LOG_EVERY_N(WARNING, 100) << "cannot open a stream transport to " << address << ": "
                              << fd.status();
    Drop(DropReason::kSendFailed);
    return nullptr;
  }
  AdoptStream(*std::move(fd), /*connecting=*/true, address);
  auto found = streams_by_address_.find(address);
  return found == streams_by_address_.end() ? nullptr : found->second;
}

void DataplaneWorker::OnFrame(StreamConn* conn, absl::Span<uint8_t> frame) {
  now_ns_ = RealtimeNs();
  Origin origin;
  origin.conn = conn;
  HandleFrame(frame, origin);
}

void DataplaneWorker::OnWritable(StreamConn* conn) { OnStreamWritable(conn); }

void DataplaneWorker::OnClosed(StreamConn* conn, const absl::Status& why) {
  VLOG(1) << "stream transport closed: " << why;
  for (auto it = streams_by_address_.begin(); it != streams_by_address_.end();) {
    if (it->second == conn) {
      streams_by_address_.erase(it++);
    } else {
      ++it;
    }
  }
  OnStreamClosed(conn);
  closed_streams_.push_back(conn);
}

}  // namespace ferry::dataplane
