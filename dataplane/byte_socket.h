// ByteSocket: a plain TCP socket at the edge of the fabric, carrying raw bytes.
//
// At the agent it is the local client's connection; at the connector, the backend connection.
// Its bytes become the DATA frames of one flow. It gives the owner what a flow needs for
// end-to-end flow control and half-close: a bounded write queue, OnDrained as queued bytes
// actually reach the kernel (the owner grants WINDOW credit from it), pause/resume of reading
// (the owner pauses when its credit is spent), and shutdown(SHUT_WR) once the queue has drained.
//
// A ByteSocket lives on one EventLoop and is used only on that loop's thread. Callbacks run from
// the loop only, never from inside a ByteSocket method the owner called (Close excepted). Start,
// Close, closed(), queued_bytes() and user_tag come from StreamSocket.

#ifndef FERRY_DATAPLANE_BYTE_SOCKET_H_
#define FERRY_DATAPLANE_BYTE_SOCKET_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "common/unique_fd.h"
#include "dataplane/buffer_pool.h"
#include "dataplane/event_loop.h"
#include "dataplane/stream_socket.h"

namespace ferry::dataplane {

class ByteSocket : public StreamSocket {
 public:
  // Size of the read buffer a socket allocates for itself when none is passed in.
  static constexpr size_t kDefaultReadChunk = 16 * 1024;
  // Most bytes one OnEvents reads before returning to the loop (fairness between sockets).
  static constexpr size_t kReadBudgetPerEvent = 256 * 1024;

  class Delegate {
   public:
    virtual ~Delegate() = default;
    // A connecting socket's connect succeeded (not called for sockets made connected).
    virtual void OnConnected(ByteSocket* socket) = 0;
    // Bytes read from the socket, at most the read buffer's size; valid during the call only.
    virtual void OnData(ByteSocket* socket, absl::Span<const uint8_t> data) = 0;
    // The peer sent FIN: no more OnData. Writing still works until the owner shuts it down.
    virtual void OnReadClosed(ByteSocket* socket) = 0;
    // `bytes_written` queued bytes left the queue into the kernel since the last call.
    virtual void OnDrained(ByteSocket* socket, size_t bytes_written) = 0;
    // The socket is gone: a reset or other socket error (the errno's status, e.g. UNAVAILABLE
    // for ECONNRESET or ECONNREFUSED), or Close() (CANCELLED). Called once; nothing is called
    // after it. A connection whose two directions both ended cleanly (OnReadClosed, and
    // ShutdownWrite done) is not closed by the socket: the owner calls Close. The delegate may
    // delete the ByteSocket after this returns, not inside it.
    virtual void OnClosed(ByteSocket* socket, const absl::Status& why) = 0;
  };

  // Takes `fd`, a TCP socket that is connected or, with `connecting` = true, in the middle of a
  // non-blocking connect (ConnectTcp): writes made before it completes are queued, and the
  // outcome is OnConnected or OnClosed. The fd is made non-blocking, with TCP_NODELAY. `loop`,
  // `delegate` and `pool` must outlive the socket. `max_queued_bytes` bounds the write queue.
  //
  // `read_buffer`: where reads land. Empty (the default): the socket allocates
  // kDefaultReadChunk bytes of its own. Otherwise a buffer the caller owns and keeps alive for
  // the socket's life; since OnData's bytes are valid during the call only, one buffer may be
  // shared by every ByteSocket of a loop (a per-worker scratch buffer: no per-connection read
  // memory). Its size is the most one OnData delivers.
  //
  // Start() registers it in the loop (StreamSocket); the destructor leaves the loop and closes
  // the socket without calling OnClosed; Close() closes with OnClosed(CANCELLED) at once.
  ByteSocket(EventLoop* loop, UniqueFd fd, bool connecting, Delegate* delegate, BufferPool* pool,
             size_t max_queued_bytes, absl::Span<uint8_t> read_buffer = {});
  ~ByteSocket() override;

  // Queues `data` and writes what the socket takes at once (unless bytes were already waiting or
  // it is still connecting). Returns false, queueing nothing, when the queue would exceed
  // max_queued_bytes or the pool has no room, after ShutdownWrite, or once closed. The bytes'
  // departure is reported by OnDrained from the loop; a write error by OnClosed from the loop.
  bool Write(absl::Span<const uint8_t> data);

  // Sends FIN once everything queued has been written (at once when nothing is). Later Writes
  // are refused. Reading goes on. Idempotent.
  void ShutdownWrite();

  // Stops and restarts reading: while paused no OnData or OnReadClosed is made, and the
  // kernel's receive buffer fills until the peer's sends block (TCP backpressure). Idempotent.
  void PauseReading();
  void ResumeReading();
  bool reading_paused() const { return paused_; }

  // EventLoop::Handler; called by the loop only.
  void OnEvents(uint32_t epoll_events) override;

 private:
  // StreamSocket.
  uint32_t WantedEvents() const override;
  void NotifyClosed(const absl::Status& why) override;
  // Writes what the socket takes now, counting the bytes for OnDrained.
  void FlushAndCount();
  // shutdown(SHUT_WR) when asked for and the queue is empty.
  void MaybeShutdownWrite();
  // Reads and delivers data, up to kReadBudgetPerEvent bytes. Returns false when closed.
  bool ReadData();

  Delegate* const delegate_;
  std::unique_ptr<uint8_t[]> own_read_buffer_;
  absl::Span<uint8_t> read_buffer_;
  bool paused_ = false;
  bool read_closed_ = false;         // EOF seen
  bool shutdown_requested_ = false;  // ShutdownWrite called
  bool shutdown_done_ = false;       // FIN sent
  // The socket hung up (EPOLLHUP) while there was nothing to read it for: registered for no
  // events, edge-triggered, until ResumeReading, as epoll reports a standing hang-up whatever
  // the registered events.
  bool parked_ = false;
  // Bytes written since the last OnDrained.
  size_t drained_ = 0;
  // Bytes read over the socket's life (for the per-event read budget).
  size_t read_count_ = 0;
};

}  // namespace ferry::dataplane

#endif  // FERRY_DATAPLANE_BYTE_SOCKET_H_
