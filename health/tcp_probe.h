// TcpProbe: the tcp health check — a non-blocking connect; healthy when it completes.

#ifndef FERRY_HEALTH_TCP_PROBE_H_
#define FERRY_HEALTH_TCP_PROBE_H_

#include <memory>

#include "absl/time/time.h"
#include "dataplane/event_loop.h"
#include "dataplane/socket_address.h"
#include "health/probe_core.h"

namespace ferry::health {

class TcpProbe final : public ProbeCore {
 public:
  // Connects to `target`; `done` gets "ok" once connected (SO_ERROR 0; the socket is then closed
  // at once), "connect: <reason>" when refused or unreachable, "timeout" after `timeout`. Same
  // rules as Probe::Start (done never inside Start, exactly once, loop thread only).
  static std::unique_ptr<TcpProbe> Start(dataplane::EventLoop& loop,
                                         const dataplane::SocketAddress& target,
                                         absl::Duration timeout, Done done);

 private:
  using ProbeCore::ProbeCore;
  void OnSocketEvents(uint32_t epoll_events) override;
};

}  // namespace ferry::health

#endif  // FERRY_HEALTH_TCP_PROBE_H_
