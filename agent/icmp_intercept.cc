#include "agent/icmp_intercept.h"

#include <arpa/inet.h>
#include <linux/icmp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace ferry::agent {
namespace {

constexpr size_t kIpv4MinHeader = 20;
constexpr uint8_t kIcmpEchoReply = 0;
constexpr uint8_t kIcmpEchoRequest = 8;
constexpr uint8_t kProtocolIcmp = 1;

}  // namespace

absl::StatusOr<UniqueFd> OpenEchoInterceptSocket(in_addr vip) {
  char text[INET_ADDRSTRLEN] = "?";
  inet_ntop(AF_INET, &vip, text, sizeof(text));
  UniqueFd fd(socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP));
  if (!fd) {
    if (errno == EPERM || errno == EACCES) {
      return absl::PermissionDeniedError(absl::StrCat(
          "intercepting ping of ", text,
          " needs CAP_NET_RAW (a raw ICMP socket); run the agent as root in its network "
          "namespace or grant cap_net_raw"));
    }
    return absl::InternalError(absl::StrCat("socket(SOCK_RAW, IPPROTO_ICMP): ", strerror(errno)));
  }
  // Everything but echo requests is filtered out in the kernel: replies and
  // errors for other sockets never wake this one.
  icmp_filter filter;
  filter.data = ~(1u << ICMP_ECHO);
  if (setsockopt(fd.get(), SOL_RAW, ICMP_FILTER, &filter, sizeof(filter)) != 0) {
    return absl::InternalError(absl::StrCat("setsockopt(ICMP_FILTER): ", strerror(errno)));
  }
  sockaddr_in local = {};
  local.sin_family = AF_INET;
  local.sin_addr = vip;
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
    if (errno == EADDRNOTAVAIL) {
      return absl::NotFoundError(
          absl::StrCat("cannot bind a raw ICMP socket to ", text, ": not a local address"));
    }
    return absl::InternalError(
        absl::StrCat("bind(", text, ") of a raw ICMP socket: ", strerror(errno)));
  }
  return fd;
}

bool ParseEchoRequest(absl::Span<const uint8_t> packet, EchoRequest* out) {
  if (packet.size() < kIpv4MinHeader) return false;
  if ((packet[0] >> 4) != 4) return false;
  const size_t header = static_cast<size_t>(packet[0] & 0x0f) * 4;
  if (header < kIpv4MinHeader || header + kIcmpEchoHeaderSize > packet.size()) return false;
  if (packet[9] != kProtocolIcmp) return false;
  // More-fragments flag or a fragment offset: not a whole request.
  if (((packet[6] & 0x20) != 0) || (((packet[6] & 0x1f) | packet[7]) != 0)) return false;
  const uint8_t* icmp = packet.data() + header;
  if (icmp[0] != kIcmpEchoRequest || icmp[1] != 0) return false;
  std::memcpy(&out->source, packet.data() + 12, sizeof(out->source));
  out->identifier = static_cast<uint16_t>((icmp[4] << 8) | icmp[5]);
  out->icmp_offset = header;
  out->icmp_size = packet.size() - header;
  return true;
}

bool IsEchoReply(absl::Span<const uint8_t> message) {
  return message.size() >= kIcmpEchoHeaderSize && message[0] == kIcmpEchoReply && message[1] == 0;
}

}  // namespace ferry::agent
