#include "health/udp_probe.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace ferry::health {

std::string DatagramErrorDetail(const char* call, int error) {
  if (error == ECONNREFUSED) return "udp: port unreachable";
  return absl::StrCat(call, ": ", strerror(error));
}

std::unique_ptr<UdpProbe> UdpProbe::Start(dataplane::EventLoop& loop,
                                          const v1::HealthCheck::Udp& udp,
                                          const dataplane::SocketAddress& target,
                                          absl::Duration timeout, Done done) {
  std::unique_ptr<UdpProbe> probe(
      new UdpProbe(loop, udp.expect_prefix(), timeout, std::move(done)));
  if (probe->finished()) return probe;
  bool connected = false;
  absl::StatusOr<UniqueFd> fd = ConnectNonBlocking(target, SOCK_DGRAM, 0, &connected);
  if (!fd.ok()) {
    probe->FinishSoon(false, std::string(fd.status().message()));
    return probe;
  }
  const std::string payload = udp.send().empty() ? "ping" : udp.send();
  if (send(fd->get(), payload.data(), payload.size(), MSG_NOSIGNAL) < 0) {
    probe->FinishSoon(false, DatagramErrorDetail("send", errno));
    return probe;
  }
  probe->Watch(*std::move(fd), EPOLLIN);
  return probe;
}

void UdpProbe::OnSocketEvents(uint32_t /*epoll_events*/) {
  char buffer[2048];
  const ssize_t n = recv(fd(), buffer, sizeof(buffer), 0);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
    Finish(false, DatagramErrorDetail("recv", errno));
    return;
  }
  if (!absl::StartsWith(absl::string_view(buffer, n), expect_prefix_)) {
    Finish(false, absl::StrCat("udp reply does not start with \"", absl::CHexEscape(expect_prefix_),
                               "\""));
    return;
  }
  Finish(true, "ok");
}

}  // namespace ferry::health
