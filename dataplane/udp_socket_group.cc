#include "dataplane/udp_socket_group.h"

#include <linux/filter.h>
#include <sys/socket.h>

#include <cerrno>
#include <functional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/listen_address.h"
#include "dataplane/frame.h"

namespace ferry::dataplane {
namespace {

// Linux's default somaxconn is 4096; 1024 absorbs a connection burst per worker.
constexpr int kTcpBacklog = 1024;

// Runs on socket `index` of a group before it binds; an error aborts the group.
using BeforeBind = std::function<absl::Status(int index, int fd)>;

std::string SocketName(const ListenAddress& address, int index, int count) {
  return absl::StrCat(address.owner, " socket ", index + 1, " of ", count, " at \"", address.text,
                      "\"");
}

absl::Status SetSocketOption(int fd, int name, const char* name_text, const void* value,
                             socklen_t length, const std::string& socket_name) {
  if (setsockopt(fd, SOL_SOCKET, name, value, length) != 0) {
    return absl::ErrnoToStatus(errno,
                               absl::StrCat("setsockopt(", name_text, ") on the ", socket_name));
  }
  return absl::OkStatus();
}

absl::Status EnableReusePort(int fd, const std::string& socket_name) {
  const int one = 1;
  return SetSocketOption(fd, SO_REUSEPORT, "SO_REUSEPORT", &one, sizeof(one), socket_name);
}

// SO_RCVBUF/SO_SNDBUF of `bytes`: the FORCE variants first, which go past net.core.[rw]mem_max
// when the process has CAP_NET_ADMIN. Best effort: a smaller buffer only costs drops under load.
void SetBuffers(int fd, int bytes) {
  if (bytes <= 0) return;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
  }
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof(bytes)) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
  }
}

// Attaches the reuseport selection program to the group of `fd`: with `count` > 1 the flow
// steering program, with 1 a program that always picks socket 0. The kernel runs it on the UDP
// payload (the frame), and its result indexes the group's sockets in bind order.
absl::Status AttachReuseportProgram(int fd, uint32_t count, const std::string& socket_name) {
  // `A` is the accumulator; loads past the end of the datagram would end the program with 0,
  // but the explicit length check says what short datagrams get.
  sock_filter steer[] = {
      // A = the datagram's length.
      BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),
      // Too short to hold a flow_id: socket 0.
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, kFlowIdOffset + 4, 0, 3),
      // A = flow_id (BPF_ABS word loads are big-endian, as the frame is).
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kFlowIdOffset),
      BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, count),
      BPF_STMT(BPF_RET | BPF_A, 0),
      BPF_STMT(BPF_RET | BPF_K, 0),
  };
  sock_filter socket_zero[] = {BPF_STMT(BPF_RET | BPF_K, 0)};
  sock_fprog program{};
  if (count > 1) {
    program.len = sizeof(steer) / sizeof(steer[0]);
    program.filter = steer;
  } else {
    program.len = 1;
    program.filter = socket_zero;
  }
  return SetSocketOption(fd, SO_ATTACH_REUSEPORT_CBPF, "SO_ATTACH_REUSEPORT_CBPF", &program,
                         sizeof(program), socket_name);
}

// `address` with the one address (and port) that the bound socket `fd` took, so that the rest of
// a group binds exactly there, and with that port in its text for messages.
absl::StatusOr<ListenAddress> PinnedTo(const ListenAddress& address, int fd) {
  sockaddr_storage bound{};
  socklen_t length = sizeof(bound);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length) != 0) {
    return absl::ErrnoToStatus(
        errno, absl::StrCat("getsockname on the ", address.owner, " at \"", address.text, "\""));
  }
  ListenAddress pinned = address;
  pinned.candidates = {bound};
  pinned.text = BoundAddress(address.text, pinned.port());
  return pinned;
}

// Binds `count` sockets of `type` to `address`: the first where BindListenSocket finds room, the
// rest to the address and port the first one took, in order. `before_bind` prepares each socket.
absl::StatusOr<std::vector<UniqueFd>> BindGroup(ListenAddress address, SocketType type, int count,
                                                const BeforeBind& before_bind) {
  if (count < 1) {
    return absl::InvalidArgumentError(absl::StrCat("the ", address.owner, " at \"", address.text,
                                                   "\" needs at least 1 socket, not ", count));
  }
  std::vector<UniqueFd> sockets;
  sockets.reserve(count);
  for (int i = 0; i < count; ++i) {
    absl::Status prepared = absl::OkStatus();
    const auto setup = [&](int fd, int /*family*/) {
      if (prepared.ok()) prepared = before_bind(i, fd);
    };
    absl::StatusOr<int> fd = BindListenSocket(address, type, setup);
    UniqueFd owned(fd.ok() ? *fd : -1);
    if (!prepared.ok()) return prepared;
    if (!fd.ok()) return fd.status();
    if (i == 0) {
      absl::StatusOr<ListenAddress> pinned = PinnedTo(address, owned.get());
      if (!pinned.ok()) return pinned.status();
      address = *std::move(pinned);
    }
    sockets.push_back(std::move(owned));
  }
  return sockets;
}

absl::StatusOr<uint16_t> GroupPort(const std::vector<UniqueFd>& sockets) {
  absl::StatusOr<int> port = LocalPort(sockets.front().get());
  if (!port.ok()) return port.status();
  return static_cast<uint16_t>(*port);
}

// Raises the backlog BindListenSocket listened with: listen() on a listening socket only
// changes its backlog.
absl::Status Relisten(int fd, const std::string& host_port) {
  if (listen(fd, kTcpBacklog) != 0) {
    return absl::ErrnoToStatus(
        errno, absl::StrCat("listen(backlog ", kTcpBacklog,
                            ") on the data-plane TCP listener at \"", host_port, "\""));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<UniqueFd>> OpenTcpListeners(const std::string& host_port, int count,
                                                       bool reuse_port) {
  absl::StatusOr<ListenAddress> address =
      ParseListenAddress(host_port, HostForm::kNumericOrName, "data-plane TCP listener");
  if (!address.ok()) return address.status();
  const ListenAddress& parsed = *address;
  absl::StatusOr<std::vector<UniqueFd>> listeners =
      BindGroup(parsed, SocketType::kTcp, count, [&](int index, int fd) {
        return reuse_port ? EnableReusePort(fd, SocketName(parsed, index, count))
                          : absl::OkStatus();
      });
  if (!listeners.ok()) return listeners.status();
  for (const UniqueFd& listener : *listeners) {
    if (absl::Status status = Relisten(listener.get(), host_port); !status.ok()) return status;
  }
  return listeners;
}

}  // namespace

absl::StatusOr<UdpSocketGroup> OpenUdpSocketGroup(const std::string& host_port, int count,
                                                  int buffer_bytes) {
  absl::StatusOr<ListenAddress> address =
      ParseListenAddress(host_port, HostForm::kNumericOrName, "data-plane UDP socket group");
  if (!address.ok()) return address.status();
  const ListenAddress& parsed = *address;
  absl::StatusOr<std::vector<UniqueFd>> sockets =
      BindGroup(parsed, SocketType::kUdp, count, [&](int index, int fd) -> absl::Status {
        const std::string name = SocketName(parsed, index, count);
        if (absl::Status status = EnableReusePort(fd, name); !status.ok()) return status;
        SetBuffers(fd, buffer_bytes);
        // The program goes on before the first bind: it gives the socket its own reuseport
        // group, and the kernel never merges a socket that has one into another group (bind
        // fails with EADDRINUSE instead), so a port-0 bind cannot land in a stranger's group
        // and an explicit port held by one is refused.
        if (index == 0) return AttachReuseportProgram(fd, static_cast<uint32_t>(count), name);
        return absl::OkStatus();
      });
  if (!sockets.ok()) return sockets.status();
  if (count == 1) {
    // The one-socket group needs no program once bound. Left attached if this fails: it picks
    // the only socket anyway.
    const int unused = 0;
    setsockopt(sockets->front().get(), SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, &unused,
               sizeof(unused));
  }
  absl::StatusOr<uint16_t> port = GroupPort(*sockets);
  if (!port.ok()) return port.status();
  UdpSocketGroup group;
  group.sockets = *std::move(sockets);
  group.port = *port;
  return group;
}

absl::StatusOr<UniqueFd> OpenTcpListener(const std::string& host_port, bool reuse_port) {
  absl::StatusOr<std::vector<UniqueFd>> listeners = OpenTcpListeners(host_port, 1, reuse_port);
  if (!listeners.ok()) return listeners.status();
  return std::move(listeners->front());
}

absl::StatusOr<TcpListenerGroup> OpenTcpListenerGroup(const std::string& host_port, int count) {
  absl::StatusOr<std::vector<UniqueFd>> listeners =
      OpenTcpListeners(host_port, count, /*reuse_port=*/true);
  if (!listeners.ok()) return listeners.status();
  absl::StatusOr<uint16_t> port = GroupPort(*listeners);
  if (!port.ok()) return port.status();
  TcpListenerGroup group;
  group.listeners = *std::move(listeners);
  group.port = *port;
  return group;
}

}  // namespace ferry::dataplane
