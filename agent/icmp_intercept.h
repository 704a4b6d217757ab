// ICMP echo in the agent's intercept mode: a raw ICMP socket bound to an ICMP
// service's VIP takes the echo requests sent to that VIP (the kernel must not
// answer them itself: net.ipv4.icmp_echo_ignore_all=1 in the namespace), and
// the same socket sends the echo replies back with the VIP as source.
//
// A raw IPv4 socket hands over each packet with its IP header; the frames of
// an ICMP service carry the ICMP message only (type, code, checksum, id,
// sequence, data), as the connector's ICMP datagram socket sends and receives
// it. ParseEchoRequest finds that message. Nothing here allocates.
#pragma once

#include <netinet/in.h>

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/unique_fd.h"

namespace ferry::agent {

// The ICMP echo header: type, code, checksum, identifier, sequence.
inline constexpr size_t kIcmpEchoHeaderSize = 8;

// A non-blocking, close-on-exec raw IPPROTO_ICMP socket bound to `vip`, with
// an ICMP_FILTER that passes echo requests only. The kernel then delivers it
// only packets whose destination is `vip`, and its sends leave from `vip`.
// PERMISSION_DENIED naming CAP_NET_RAW without it; NOT_FOUND when `vip` is
// not a local address yet (EADDRNOTAVAIL); else INTERNAL with the errno.
absl::StatusOr<UniqueFd> OpenEchoInterceptSocket(in_addr vip);

// An echo request found in a raw IPv4 packet.
struct EchoRequest {
  in_addr source = {};
  uint16_t identifier = 0;  // host order
  // The ICMP message inside the packet: [icmp_offset, icmp_offset + icmp_size).
  size_t icmp_offset = 0;
  size_t icmp_size = 0;
};

// Parses `packet` (IPv4 header, then ICMP). False for anything but a whole,
// unfragmented IPv4 packet carrying an ICMP echo request (type 8, code 0) of
// at least kIcmpEchoHeaderSize bytes: a short packet, a version other than 4,
// a header length under 20 or past the end, another protocol, a fragment, or
// another ICMP type. The ICMP checksum is not checked here: the connector's
// ICMP datagram socket computes it anew when it sends the request on.
bool ParseEchoRequest(absl::Span<const uint8_t> packet, EchoRequest* out);

// Whether `message` (an ICMP message as a frame carries it) is an echo reply
// (type 0, code 0) with a whole echo header.
bool IsEchoReply(absl::Span<const uint8_t> message);

}  // namespace ferry::agent
