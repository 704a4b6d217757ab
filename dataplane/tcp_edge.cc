#include "dataplane/tcp_edge.h"

#include <utility>

#include "dataplane/big_endian.h"
#include "glog/logging.h"

namespace ferry::dataplane {

TcpEdge::TcpEdge(EventLoop* loop, UniqueFd fd, bool connecting, BufferPool* pool, Owner* owner,
                 bool initiator)
    : owner_(owner),
      socket_(std::make_unique<ByteSocket>(loop, std::move(fd), connecting, this, pool,
                                           // Room for a full window plus one chunk of slack.
                                           size_t{kWindow} + kMaxChunk)),
      open_pending_(initiator),
      send_credit_(kWindow) {}

TcpEdge::~TcpEdge() = default;

absl::Status TcpEdge::Start() {
  if (absl::Status s = socket_->Start(); !s.ok()) return s;
  if (open_pending_) Send(FrameType::kData, 0, {});
  return absl::OkStatus();
}

bool TcpEdge::Send(FrameType type, uint8_t flags, absl::Span<const uint8_t> payload) {
  if (open_pending_ && type == FrameType::kData) {
    flags |= kFlagOpen;
    open_pending_ = false;
  }
  return owner_->SendFlowFrame(this, type, flags, payload);
}

void TcpEdge::OnDataFrame(absl::Span<const uint8_t> payload, bool fin) {
  if (done_) return;
  if (remote_fin_ && !payload.empty()) {
    Reset();
    return;
  }
  if (!payload.empty() && !socket_->Write(payload)) {
    // The other side sent beyond its credit: a protocol violation.
    LOG_EVERY_N(WARNING, 100) << "TCP flow overran its window; resetting it";
    Reset();
    return;
  }
  if (fin) {
    remote_fin_ = true;
    socket_->ShutdownWrite();
    MaybeFinish();
  }
}

void TcpEdge::OnWindowFrame(absl::Span<const uint8_t> payload) {
  if (done_ || payload.size() != 4) return;
  send_credit_ += LoadBigEndian32(payload.data());
  MaybeResume();
}

void TcpEdge::OnTransportWritable() { MaybeResume(); }

void TcpEdge::MaybeResume() {
  if (paused_ && !done_ && !local_eof_ && send_credit_ > 0 && !owner_->TransportCongested(this)) {
    paused_ = false;
    socket_->ResumeReading();
  }
}

void TcpEdge::OnCloseFrame() { Finish(/*reset=*/true); }

void TcpEdge::Reset() {
  if (done_) return;
  Send(FrameType::kClose, 0, {});
  Finish(/*reset=*/true);
}

void TcpEdge::OnConnected(ByteSocket* /*socket*/) {}

void TcpEdge::OnData(ByteSocket* /*socket*/, absl::Span<const uint8_t> data) {
  if (done_) return;
  while (!data.empty()) {
    size_t n = data.size() < kMaxChunk ? data.size() : kMaxChunk;
    if (!Send(FrameType::kData, 0, data.first(n))) {
      Reset();
      return;
    }
    send_credit_ -= static_cast<int64_t>(n);
    data.remove_prefix(n);
  }
  if (!paused_ && (send_credit_ <= 0 || owner_->TransportCongested(this))) {
    paused_ = true;
    socket_->PauseReading();
  }
}

void TcpEdge::OnReadClosed(ByteSocket* /*socket*/) {
  if (done_ || local_eof_) return;
  local_eof_ = true;
  Send(FrameType::kData, kFlagFin, {});
  MaybeFinish();
}

void TcpEdge::OnDrained(ByteSocket* /*socket*/, size_t bytes_written) {
  if (done_) return;
  ungranted_ += bytes_written;
  if (ungranted_ >= kWindow / 4 || (remote_fin_ && ungranted_ > 0)) {
    uint8_t grant[4];
    StoreBigEndian32(grant, static_cast<uint32_t>(ungranted_));
    ungranted_ = 0;
    Send(FrameType::kWindow, 0, absl::MakeConstSpan(grant, 4));
  }
  MaybeFinish();
}

void TcpEdge::OnClosed(ByteSocket* /*socket*/, const absl::Status& why) {
  if (done_) return;
  VLOG(1) << "TCP edge socket closed: " << why;
  Send(FrameType::kClose, 0, {});
  Finish(/*reset=*/true);
}

void TcpEdge::MaybeFinish() {
  if (!done_ && local_eof_ && remote_fin_ && socket_->queued_bytes() == 0) {
    Finish(/*reset=*/false);
  }
}

void TcpEdge::Finish(bool reset) {
  if (done_) return;
  done_ = true;  // first, so that the socket's OnClosed below is ignored
  socket_->Close();
  owner_->EdgeDone(this, reset);
}

}  // namespace ferry::dataplane
