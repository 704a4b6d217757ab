// UdpProbe: the udp health check — one datagram on a connected UDP socket, healthy when a reply
// starting with the expected prefix comes back.

#ifndef FERRY_HEALTH_UDP_PROBE_H_
#define FERRY_HEALTH_UDP_PROBE_H_

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "dataplane/event_loop.h"
#include "dataplane/socket_address.h"
#include "ferry/v1/common.pb.h"
#include "health/probe_core.h"

namespace ferry::health {

class UdpProbe final : public ProbeCore {
 public:
  // Sends udp.send ("ping" when empty) to `target`. "ok" on the first reply that starts with
  // udp.expect_prefix (any reply when empty); "udp reply does not start with \"...\"" on another
  // reply; "udp: port unreachable" when ICMP says nobody listens (ECONNREFUSED, at once);
  // "timeout" when nothing comes. Same rules as Probe::Start.
  static std::unique_ptr<UdpProbe> Start(dataplane::EventLoop& loop,
                                         const v1::HealthCheck::Udp& udp,
                                         const dataplane::SocketAddress& target,
                                         absl::Duration timeout, Done done);

 private:
  UdpProbe(dataplane::EventLoop& loop, std::string expect_prefix, absl::Duration timeout, Done done)
      : ProbeCore(loop, timeout, std::move(done)), expect_prefix_(std::move(expect_prefix)) {}
  void OnSocketEvents(uint32_t epoll_events) override;

  const std::string expect_prefix_;
};

// "udp: port unreachable" for ECONNREFUSED, else "<call>: <strerror>".
std::string DatagramErrorDetail(const char* call, int error);

}  // namespace ferry::health

#endif  // FERRY_HEALTH_UDP_PROBE_H_
