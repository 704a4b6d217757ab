// StreamConn: one TCP connection of a stream transport, carrying the frames of many flows.
//
// TCP services ride stream transports: each worker keeps a TCP connection per peer (agent and
// relay, relay and connector) and sends every flow's frames over it, each frame preceded by its
// length as 2 big-endian bytes. This class is the connection: it frames and queues outgoing
// frames, reassembles incoming ones from the byte stream, and gives the owner backpressure
// signals (Send refuses past the queue limit; OnWritable once the queue has drained). Per-flow
// logic (open, close, half-close, WINDOW credit) belongs to the owner.
//
// A StreamConn lives on one EventLoop and is used only on that loop's thread. Callbacks run from
// the loop, never from inside a StreamConn method the owner called (Close excepted). Start,
// Close, closed(), queued_bytes() and user_tag come from StreamSocket.

#ifndef FERRY_DATAPLANE_STREAM_CONN_H_
#define FERRY_DATAPLANE_STREAM_CONN_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/unique_fd.h"
#include "dataplane/buffer_pool.h"
#include "dataplane/event_loop.h"
#include "dataplane/frame.h"
#include "dataplane/stream_socket.h"

namespace ferry::dataplane {

class StreamConn : public StreamSocket {
 public:
  // Bytes of the length prefix in front of every frame.
  static constexpr size_t kLengthPrefixSize = 2;
  // Most bytes one OnEvents reads before returning to the loop, so that one busy connection
  // cannot starve the others; the level-triggered registration brings it back next round.
  static constexpr size_t kReadBudgetPerEvent = 256 * 1024;

  class Delegate {
   public:
    virtual ~Delegate() = default;
    // One whole frame, between kMinFrameSize and kMaxFrameSize bytes, not yet decoded or
    // authenticated (mutable: the receiver decrypts in place); valid during the call only. May
    // call Send and Close on this or any other connection.
    virtual void OnFrame(StreamConn* conn, absl::Span<uint8_t> frame) = 0;
    // The write queue drained to the low-water mark (limit / 2) after having been over it, or
    // after Send refused a frame while frames were queued: the owner may send again. (A refusal
    // with nothing queued, when other connections hold the whole pool, is not followed by
    // OnWritable: size the pool so that it cannot happen.)
    virtual void OnWritable(StreamConn* conn) = 0;
    // The connection is gone: the peer closed it (UNAVAILABLE; DATA_LOSS when it stopped in the
    // middle of a frame), a socket error (the errno's status), a bad length prefix
    // (INVALID_ARGUMENT "bad frame length N"), a failed connect, or Close() (CANCELLED). Called
    // once; nothing is called after it. The delegate may delete the StreamConn after this
    // returns, not inside it (use EventLoop::Post or a deferred-delete list).
    virtual void OnClosed(StreamConn* conn, const absl::Status& why) = 0;
  };

  // Takes `fd`, a TCP socket that is connected or, with `connecting` = true, in the middle of a
  // non-blocking connect (ConnectTcp): then frames sent before the connection completes are
  // queued and go out once it does; a failed connect is reported by OnClosed. The fd is made
  // non-blocking, with TCP_NODELAY. `loop`, `delegate` and `pool` must outlive the connection.
  // `max_queued_bytes` bounds the write queue (length prefixes included); it should be at least
  // kLengthPrefixSize + kMaxFrameSize, or the largest frames are never accepted, and the pool
  // should hold that much for each of its connections, or a connection with an empty queue may
  // find the pool taken by the others. Allocates the 2 + 65535-byte read buffer here.
  // Start() registers it in the loop (StreamSocket); the destructor leaves the loop and closes
  // the socket without calling OnClosed; Close() closes with OnClosed(CANCELLED) at once.
  StreamConn(EventLoop* loop, UniqueFd fd, bool connecting, Delegate* delegate, BufferPool* pool,
             size_t max_queued_bytes);
  ~StreamConn() override;

  // Queues one frame; the length prefix is added here. Returns false, queueing nothing, when the
  // frame would take the queue past max_queued_bytes or the pool has no room (backpressure: drop
  // it or wait for OnWritable), when the frame is shorter than kMinFrameSize or longer than
  // kMaxFrameSize (the peer would close the connection over it), or after the connection has
  // closed. Writes to the socket at once when nothing was queued before, so an idle connection
  // adds no latency. Never calls the delegate: a write error is reported by OnClosed from the
  // loop. Allowed before Start.
  bool Send(absl::Span<const uint8_t> frame);

  // Whether more than half of max_queued_bytes is queued (the low-water mark for OnWritable).
  bool over_low_water() const { return queue().bytes() > queue().limit_bytes() / 2; }

  // EventLoop::Handler; called by the loop only.
  void OnEvents(uint32_t epoll_events) override;

 private:
  // Size of the read buffer: one length prefix and the largest frame.
  static constexpr size_t kReadBufferSize = kLengthPrefixSize + kMaxFrameSize;
  // Compacts the read buffer when less than this is free after the buffered bytes.
  static constexpr size_t kMinReadRoom = 4096;

  bool writable_due() const { return want_writable_ && !over_low_water(); }
  // StreamSocket.
  uint32_t WantedEvents() const override;
  void NotifyClosed(const absl::Status& why) override;
  // Reads and dispatches frames, up to kReadBudgetPerEvent bytes. Returns false when closed.
  bool ReadFrames();
  // Dispatches every whole frame in the read buffer. Returns false when closed.
  bool DispatchFrames();
  // Moves a partial frame to the front of the read buffer when it would not fit.
  void MakeReadRoom();

  Delegate* const delegate_;
  std::unique_ptr<uint8_t[]> read_buffer_;
  size_t read_start_ = 0;  // first byte of the frame being assembled
  size_t read_end_ = 0;    // end of the bytes read
  // The owner is owed an OnWritable (the queue went over the low-water mark or a Send failed).
  bool want_writable_ = false;
};

// Starts a non-blocking connect to `host_port`, an IP literal and a port ("10.0.0.7:7000",
// "[::1]:7000"). Returns the socket (non-blocking, close-on-exec), still connecting:
// hand it to StreamConn or ByteSocket with connecting = true, which report the outcome. Returns
// INVALID_ARGUMENT for an address that is not an IP literal with a port from 1 to 65535, and the
// errno status of socket() or of a connect() that failed at once (e.g. no route). Any thread.
absl::StatusOr<UniqueFd> ConnectTcp(const std::string& host_port);

}  // namespace ferry::dataplane

#endif  // FERRY_DATAPLANE_STREAM_CONN_H_
