// IcmpProbe: the icmp health check — one echo request through an unprivileged ICMP datagram
// socket (socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP); IPPROTO_ICMPV6 for IPv6), healthy on the
// echo reply carrying our sequence number.
//
// The kernel hands out such sockets only to groups in net.ipv4.ping_group_range (a per network
// namespace setting); elsewhere the probe fails with a detail that names it.

#ifndef FERRY_HEALTH_ICMP_PROBE_H_
#define FERRY_HEALTH_ICMP_PROBE_H_

#include <cstdint>
#include <memory>

#include "absl/time/time.h"
#include "dataplane/event_loop.h"
#include "dataplane/socket_address.h"
#include "health/probe_core.h"

namespace ferry::health {

class IcmpProbe final : public ProbeCore {
 public:
  // Pings `target`'s IP (its port is ignored). "ok" on our echo reply; "icmp: ... (EACCES):
  // net.ipv4.ping_group_range ..." when the socket is not allowed; "icmp: <errno>" on an ICMP
  // error (host unreachable); "timeout" when no reply comes. The kernel fills in the identifier
  // and checksum. Same rules as Probe::Start.
  static std::unique_ptr<IcmpProbe> Start(dataplane::EventLoop& loop,
                                          const dataplane::SocketAddress& target,
                                          absl::Duration timeout, Done done);

 private:
  IcmpProbe(dataplane::EventLoop& loop, bool v6, uint16_t sequence, absl::Duration timeout,
            Done done)
      : ProbeCore(loop, timeout, std::move(done)), v6_(v6), sequence_(sequence) {}
  void OnSocketEvents(uint32_t epoll_events) override;

  const bool v6_;
  const uint16_t sequence_;
};

}  // namespace ferry::health

#endif  // FERRY_HEALTH_ICMP_PROBE_H_
