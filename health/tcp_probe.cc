#include "health/tcp_probe.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <string>
#include <utility>

namespace ferry::health {

std::unique_ptr<TcpProbe> TcpProbe::Start(dataplane::EventLoop& loop,
                                          const dataplane::SocketAddress& target,
                                          absl::Duration timeout, Done done) {
  std::unique_ptr<TcpProbe> probe(new TcpProbe(loop, timeout, std::move(done)));
  if (probe->finished()) return probe;
  bool connected = false;
  absl::StatusOr<UniqueFd> fd = ConnectNonBlocking(target, SOCK_STREAM, 0, &connected);
  if (!fd.ok()) {
    probe->FinishSoon(false, std::string(fd.status().message()));
  } else if (connected) {
    probe->FinishSoon(true, "ok");
  } else {
    probe->Watch(*std::move(fd), EPOLLOUT);
  }
  return probe;
}

void TcpProbe::OnSocketEvents(uint32_t /*epoll_events*/) {
  std::string error = PendingSocketError(fd());
  if (error.empty()) {
    Finish(true, "ok");
  } else {
    Finish(false, std::move(error));
  }
}

}  // namespace ferry::health
