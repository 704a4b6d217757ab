#include "health/icmp_probe.h"

#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace ferry::health {
namespace {

constexpr char kPayload[] = "ferry-health";

uint16_t NextSequence() {
  static std::atomic<uint16_t> sequence{1};
  return sequence.fetch_add(1, std::memory_order_relaxed);
}

std::string SocketError(int error, bool v6) {
  if (error == EACCES || error == EPERM) {
    return absl::StrCat(
        "icmp: cannot open an ICMP datagram socket (", strerror(error),
        "): this process's group is outside net.ipv4.ping_group_range", v6 ? " (IPv6 too)" : "",
        "; widen it (sysctl net.ipv4.ping_group_range) or run in a namespace that allows it");
  }
  return absl::StrCat("icmp: socket: ", strerror(error));
}

}  // namespace

std::unique_ptr<IcmpProbe> IcmpProbe::Start(dataplane::EventLoop& loop,
                                            const dataplane::SocketAddress& target,
                                            absl::Duration timeout, Done done) {
  const bool v6 = target.family() == AF_INET6;
  const uint16_t sequence = NextSequence();
  std::unique_ptr<IcmpProbe> probe(new IcmpProbe(loop, v6, sequence, timeout, std::move(done)));
  if (probe->finished()) return probe;
  UniqueFd fd(socket(target.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                     v6 ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP}));
  if (!fd) {
    probe->FinishSoon(false, SocketError(errno, v6));
    return probe;
  }
  dataplane::SocketAddress peer = target;
  if (v6) {
    reinterpret_cast<sockaddr_in6*>(peer.get())->sin6_port = 0;
  } else {
    reinterpret_cast<sockaddr_in*>(peer.get())->sin_port = 0;
  }
  if (connect(fd.get(), peer.get(), peer.length) != 0) {
    probe->FinishSoon(false, absl::StrCat("icmp: connect: ", strerror(errno)));
    return probe;
  }
  // Type, code, checksum (kernel), identifier (kernel: the socket's "port"), sequence, payload.
  unsigned char packet[8 + sizeof(kPayload)] = {};
  packet[0] = v6 ? ICMP6_ECHO_REQUEST : ICMP_ECHO;
  packet[6] = static_cast<unsigned char>(sequence >> 8);
  packet[7] = static_cast<unsigned char>(sequence & 0xff);
  memcpy(packet + 8, kPayload, sizeof(kPayload));
  if (send(fd.get(), packet, sizeof(packet), MSG_NOSIGNAL) < 0) {
    probe->FinishSoon(false, absl::StrCat("icmp: send: ", strerror(errno)));
    return probe;
  }
  probe->Watch(std::move(fd), EPOLLIN);
  return probe;
}

void IcmpProbe::OnSocketEvents(uint32_t /*epoll_events*/) {
  unsigned char buffer[1500];
  while (true) {
    const ssize_t n = recv(fd(), buffer, sizeof(buffer), 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR) continue;
      Finish(false, absl::StrCat("icmp: ", strerror(errno)));
      return;
    }
    if (n < 8) continue;
    const unsigned char reply_type = v6_ ? ICMP6_ECHO_REPLY : ICMP_ECHOREPLY;
    const uint16_t sequence = static_cast<uint16_t>((buffer[6] << 8) | buffer[7]);
    // Replies to earlier probes of this socket cannot come (it is new), but be exact anyway.
    if (buffer[0] == reply_type && sequence == sequence_) {
      Finish(true, "ok");
      return;
    }
  }
}

}  // namespace ferry::health
