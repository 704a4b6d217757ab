// ProbeCore: what every probe kind shares — its socket on the loop, its deadline (on the loop's
// shared TimerQueue, not a timerfd of its own) and the "done exactly once" rule.
//
// A kind derives from ProbeCore, opens its socket with Watch, reacts in OnSocketEvents and ends
// with Finish. Loop thread only.

#ifndef FERRY_HEALTH_PROBE_CORE_H_
#define FERRY_HEALTH_PROBE_CORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"
#include "dataplane/event_loop.h"
#include "dataplane/socket_address.h"
#include "health/probe_result.h"
#include "health/timer_queue.h"

namespace ferry::health {

class ProbeCore : public dataplane::EventLoop::Handler {
 public:
  using Done = std::function<void(ProbeResult)>;

  // Cancels: removes and closes the socket and the deadline; `done` is not called.
  ~ProbeCore() override;

  ProbeCore(const ProbeCore&) = delete;
  ProbeCore& operator=(const ProbeCore&) = delete;

  // True once Finish ran (done was called or is being called).
  bool finished() const { return finished_; }

  void OnEvents(uint32_t epoll_events) final;

 protected:
  // Arms the deadline `timeout` from now: when it passes first, the probe finishes with
  // "timeout" (OnTimeout may add detail).
  ProbeCore(dataplane::EventLoop& loop, absl::Duration timeout, Done done);

  dataplane::EventLoop& loop() { return loop_; }
  int fd() const { return fd_.get(); }

  // Takes `fd` and watches it for `events`. False (and the probe finished soon, with the error)
  // when the loop refuses it.
  bool Watch(UniqueFd fd, uint32_t events);
  // Changes the events watched on the socket.
  void WatchEvents(uint32_t events);

  // Ends the probe: closes the socket, cancels the deadline, calls `done`. `done` may destroy
  // this object: return at once, touching no member. A no-op once finished.
  void Finish(bool ok, std::string detail);
  // Finish from the loop's next timer round: for outcomes known inside Start, where `done` must
  // not run yet.
  void FinishSoon(bool ok, std::string detail);

  // The socket's epoll events (only while not finished).
  virtual void OnSocketEvents(uint32_t epoll_events) = 0;
  // The deadline passed. Default: Finish(false, "timeout").
  virtual void OnTimeout();

 private:
  void CloseSocket();

  dataplane::EventLoop& loop_;
  std::shared_ptr<TimerQueue> timers_;
  TimerQueue::Id deadline_ = 0;
  TimerQueue::Id finish_soon_ = 0;
  UniqueFd fd_;
  bool registered_ = false;
  bool finished_ = false;
  // Cleared by the destructor: FinishSoon's posted fallback (no timer queue) checks it.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  Done done_;
};

// A non-blocking socket of `type` (SOCK_STREAM, SOCK_DGRAM) and `protocol` for `target`'s family,
// with connect() started. `*connected` says whether it completed at once; otherwise (stream) the
// socket turns writable when it does and SO_ERROR tells how it went. Errors name the call:
// "socket: ..." or "connect: ...".
absl::StatusOr<UniqueFd> ConnectNonBlocking(const dataplane::SocketAddress& target, int type,
                                            int protocol, bool* connected);

// SO_ERROR of `fd` as "connect: <strerror>", or "" when it is 0.
std::string PendingSocketError(int fd);

// `target`'s IP as text ("10.0.0.1", "::1"), for Host headers and SNI fallbacks.
std::string AddressHost(const dataplane::SocketAddress& target);

}  // namespace ferry::health

#endif  // FERRY_HEALTH_PROBE_CORE_H_
