// The data plane's listening sockets: one SO_REUSEPORT UDP socket per worker, with a classic-BPF
// program that steers each datagram to the worker owning its flow, and reuseport TCP listeners
// for the stream transports.
//
// Steering: with N workers, the kernel hands a datagram whose frame carries flow_id (the
// big-endian u32 at dataplane::kFlowIdOffset) to socket flow_id % N of the group, so both
// directions of a flow meet on one worker and the per-packet path shares nothing. WorkerForFlow
// is the same rule for code that picks flow ids.
//
// All functions here run at start-up on a control thread; none is on the per-packet path.

#ifndef FERRY_DATAPLANE_UDP_SOCKET_GROUP_H_
#define FERRY_DATAPLANE_UDP_SOCKET_GROUP_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"

namespace ferry::dataplane {

// The worker that owns a flow: flow_id % workers (0 when `workers` is 0). The relay uses it to
// pick upstream flow ids that come back to the same worker. The steering program in
// OpenUdpSocketGroup computes the same value in the kernel.
inline uint32_t WorkerForFlow(uint32_t flow_id, uint32_t workers) {
  return workers == 0 ? 0 : flow_id % workers;
}

struct UdpSocketGroup {
  // sockets[i] receives the datagrams of the flows with WorkerForFlow(flow_id, size()) == i.
  std::vector<UniqueFd> sockets;
  // The port all sockets are bound to (the kernel's pick when asked for port 0).
  uint16_t port = 0;
};

// Opens `count` (>= 1) non-blocking, close-on-exec UDP sockets bound with SO_REUSEPORT to the same
// `host_port` ("127.0.0.1:0", "[::1]:0", "0.0.0.0:7000", or a host name, which may block on the
// resolver). With port 0 the first socket picks the port and the rest bind to it; with a name,
// the rest bind to the address the first one took.
//
// When count > 1, a classic-BPF program attached with SO_ATTACH_REUSEPORT_CBPF returns
// flow_id % count; datagrams too short to hold a flow_id (fewer than kFlowIdOffset + 4 bytes) go
// to socket 0. The sockets are bound in order, so sockets[i] is the i-th socket of the kernel's
// reuseport group. The first socket creates its group before it binds, so the sockets never join
// a group that another socket (of this or another process of the same user) already has on that
// address and port: such a port is refused as in use, as without SO_REUSEPORT.
//
// `buffer_bytes`, when non-zero, sets SO_RCVBUF and SO_SNDBUF (SO_*BUFFORCE when privileged;
// else capped by net.core.[rw]mem_max); best effort, never an error.
//
// Errors (nothing stays open): INVALID_ARGUMENT for a count below 1 or a malformed
// or unresolvable address; ALREADY_EXISTS when the port is in use; PERMISSION_DENIED for a port
// below 1024 without CAP_NET_BIND_SERVICE; else the errno status of the failing call. Messages
// name the address and the call. Thread-safe.
absl::StatusOr<UdpSocketGroup> OpenUdpSocketGroup(const std::string& host_port, int count,
                                                  int buffer_bytes = 0);

// A non-blocking, close-on-exec TCP listener on `host_port` (port 0 allowed) with SO_REUSEADDR,
// and SO_REUSEPORT when `reuse_port` (so that other listeners of the same user may share the
// port), listening with a backlog of 1024. Errors as OpenUdpSocketGroup's. Thread-safe.
absl::StatusOr<UniqueFd> OpenTcpListener(const std::string& host_port, bool reuse_port);

struct TcpListenerGroup {
  // Listeners sharing one port through SO_REUSEPORT; the kernel spreads new connections over
  // them (by a hash of the connection's addresses: there is no flow_id before the first frame).
  std::vector<UniqueFd> listeners;
  // The port all listeners are bound to.
  uint16_t port = 0;
};

// Opens `count` (>= 1) OpenTcpListener(host_port, /*reuse_port=*/true) listeners on one port:
// with port 0 the first picks it, the rest bind to the address and port the first one took.
// Errors as OpenUdpSocketGroup's; nothing stays open on error. Thread-safe.
absl::StatusOr<TcpListenerGroup> OpenTcpListenerGroup(const std::string& host_port, int count);

}  // namespace ferry::dataplane

#endif  // FERRY_DATAPLANE_UDP_SOCKET_GROUP_H_
