// One end of a TCP flow at the edge of the fabric: a plain TCP socket (the
// client's connection at the agent, the backend connection at the connector)
// on one side, the flow's frames on a stream hop on the other.
//
// Flow control is credit based and end to end (the relay only re-seals):
// each side may have at most kWindow payload bytes in flight towards the
// other. The receiving edge grants credit back with WINDOW frames as bytes
// actually leave its socket's queue into the kernel, so a slow reader stalls
// only its own flow: its edge stops granting, the sending edge stops reading
// its socket, and the stream transport keeps carrying every other flow.
//
// Half-close travels as a DATA frame with the FIN flag (the socket saw EOF)
// and becomes shutdown(SHUT_WR) at the other edge; a reset or error travels
// as CLOSE. The edge is done once both directions have finished and its
// queue is empty, or at once on a reset.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/types/span.h"
#include "common/unique_fd.h"
#include "dataplane/buffer_pool.h"
#include "dataplane/byte_socket.h"
#include "dataplane/event_loop.h"
#include "dataplane/frame.h"

namespace ferry::dataplane {

class TcpEdge : public ByteSocket::Delegate {
 public:
  // Bytes a side may send ahead of the other's grants.
  static constexpr uint32_t kWindow = 256 * 1024;
  // Largest payload of one DATA frame.
  static constexpr size_t kMaxChunk = 16 * 1024;

  // What the owner does for the edge: seal and send a frame of the flow, and
  // forget the flow once the edge is done.
  class Owner {
   public:
    virtual ~Owner() = default;
    // False when the frame could not be queued (the flow is then reset).
    virtual bool SendFlowFrame(TcpEdge* edge, FrameType type, uint8_t flags,
                               absl::Span<const uint8_t> payload) = 0;
    // The edge is finished (`reset`: abnormally). The owner deletes it later,
    // not inside this call.
    virtual void EdgeDone(TcpEdge* edge, bool reset) = 0;
    // Whether the transport the flow rides is backed up (its queue is over
    // the low-water mark). The edge then stops reading its socket until
    // OnTransportWritable(), so a busy transport slows its senders instead of
    // dropping their frames.
    virtual bool TransportCongested(TcpEdge* edge) = 0;
  };

  // `initiator`: this edge opens the flow (the agent), so its first frame
  // carries kFlagOpen, sent at once from Start().
  TcpEdge(EventLoop* loop, UniqueFd fd, bool connecting, BufferPool* pool, Owner* owner,
          bool initiator);
  ~TcpEdge() override;

  TcpEdge(const TcpEdge&) = delete;
  TcpEdge& operator=(const TcpEdge&) = delete;

  absl::Status Start();

  // Frames of the flow from the other edge (already authenticated).
  void OnDataFrame(absl::Span<const uint8_t> payload, bool fin);
  void OnWindowFrame(absl::Span<const uint8_t> payload);
  void OnCloseFrame();
  // The flow's transport drained below its low-water mark.
  void OnTransportWritable();
  // Ends the flow abruptly from this side: CLOSE to the other edge, socket reset.
  void Reset();

  bool done() const { return done_; }
  uintptr_t tag = 0;  // for the owner (e.g. its flow handle)

  // ByteSocket::Delegate.
  void OnConnected(ByteSocket* socket) override;
  void OnData(ByteSocket* socket, absl::Span<const uint8_t> data) override;
  void OnReadClosed(ByteSocket* socket) override;
  void OnDrained(ByteSocket* socket, size_t bytes_written) override;
  void OnClosed(ByteSocket* socket, const absl::Status& why) override;

 private:
  bool Send(FrameType type, uint8_t flags, absl::Span<const uint8_t> payload);
  void MaybeResume();
  void MaybeFinish();
  void Finish(bool reset);

  Owner* const owner_;
  std::unique_ptr<ByteSocket> socket_;
  bool open_pending_;        // the next frame carries kFlagOpen
  int64_t send_credit_;      // bytes we may still send
  uint64_t ungranted_ = 0;   // bytes written to our socket not yet granted back
  bool local_eof_ = false;   // our socket reached EOF; FIN sent
  bool remote_fin_ = false;  // the other edge sent FIN
  bool paused_ = false;
  bool done_ = false;
};

}  // namespace ferry::dataplane
