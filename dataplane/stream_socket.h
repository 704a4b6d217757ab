// StreamSocket: what the two sockets of the stream transports share. StreamConn (frames between
// data-plane processes) and ByteSocket (raw bytes at the edges) are both a non-blocking TCP socket
// registered level-triggered in one EventLoop, with a bounded WriteQueue over the worker's
// BufferPool, the completion of a non-blocking connect, write errors met outside the loop
// reported from it, and a close that happens once.
//
// Loop thread only, like its subclasses.

#ifndef FERRY_DATAPLANE_STREAM_SOCKET_H_
#define FERRY_DATAPLANE_STREAM_SOCKET_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/unique_fd.h"
#include "dataplane/buffer_pool.h"
#include "dataplane/event_loop.h"
#include "dataplane/write_queue.h"

namespace ferry::dataplane {

class StreamSocket : public EventLoop::Handler {
 public:
  // Leaves the loop and closes the socket, dropping queued bytes. Calls no delegate.
  ~StreamSocket() override;

  StreamSocket(const StreamSocket&) = delete;
  StreamSocket& operator=(const StreamSocket&) = delete;

  // Registers in the loop (level-triggered). Call once, on the loop thread. Returns the loop's
  // error if the fd cannot be added (then no callback is ever made), FAILED_PRECONDITION when
  // already started or closed.
  absl::Status Start();

  // Bytes waiting in the write queue.
  size_t queued_bytes() const { return queue_.bytes(); }
  // True once the socket has closed (the delegate's OnClosed has been called).
  bool closed() const { return closed_; }

  // Closes now, dropping queued bytes, and reports CANCELLED to the delegate's OnClosed before
  // returning (the only callback made from inside a call of the owner's). A no-op once closed.
  void Close();

  // For the owner (e.g. an index into its tables); never read here.
  uintptr_t user_tag = 0;

 protected:
  // `what` names the socket in status messages ("stream connection"); a string literal. The fd
  // is made non-blocking, with TCP_NODELAY when it is TCP.
  StreamSocket(EventLoop* loop, UniqueFd fd, bool connecting, BufferPool* pool,
               size_t max_queued_bytes, const char* what);

  // The epoll events the subclass needs now (EPOLLIN, EPOLLOUT, ...).
  virtual uint32_t WantedEvents() const = 0;
  // Tells the delegate that the socket is gone; called once, by Finish.
  virtual void NotifyClosed(const absl::Status& why) = 0;

  // Registers WantedEvents() when they differ from the registered ones.
  void UpdateInterest();

  // Leaves the loop, closes the fd, drops queued bytes, and calls NotifyClosed(why). A no-op
  // once closed.
  void Finish(const absl::Status& why);

  // Writes what the socket takes now and returns how many bytes left the queue. A write error is
  // kept for the loop to report (deferred_error()).
  size_t Flush();

  // Whether EPOLLOUT is needed for the shared reasons: a connect to complete, queued bytes, or a
  // deferred error to report.
  bool NeedsWritable() const { return connecting_ || !queue_.empty() || !deferred_error_.ok(); }

  enum class ConnectProgress { kPending, kConnected, kFailed };
  // For OnEvents while connecting(): kPending when `epoll_events` do not report the connect's
  // outcome; kConnected (connecting() is false from now on); kFailed after Finish with the
  // connect's error.
  ConnectProgress CompleteConnect(uint32_t epoll_events);

  // Takes the socket's pending error (SO_ERROR) after EPOLLERR. Returns false after Finish with
  // it; true when there was none.
  bool CheckSocketError();

  int fd() const { return fd_.get(); }
  WriteQueue& queue() { return queue_; }
  const WriteQueue& queue() const { return queue_; }
  bool connecting() const { return connecting_; }
  const absl::Status& deferred_error() const { return deferred_error_; }
  void DeferError(const absl::Status& error) { deferred_error_ = error; }
  absl::string_view what() const { return what_; }

 private:
  EventLoop* const loop_;
  UniqueFd fd_;
  WriteQueue queue_;
  const char* const what_;
  bool connecting_;
  bool registered_ = false;
  bool closed_ = false;
  uint32_t interest_ = 0;
  // A write error met outside the loop (in Send or Write), reported by the next OnEvents.
  absl::Status deferred_error_;
};

}  // namespace ferry::dataplane

#endif  // FERRY_DATAPLANE_STREAM_SOCKET_H_
