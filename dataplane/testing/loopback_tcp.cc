#include "dataplane/testing/loopback_tcp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"

namespace ferry::dataplane::test {
namespace {

void SetTimeouts(int fd) {
  timeval timeout = {};
  timeout.tv_sec = 10;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
}

sockaddr_in Loopback(uint16_t port) {
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

absl::Status Errno(absl::string_view what) { return absl::ErrnoToStatus(errno, what); }

}  // namespace

std::string LoopbackListener::address() const { return absl::StrCat("127.0.0.1:", port); }

absl::StatusOr<LoopbackListener> ListenOnLoopback(int receive_buffer) {
  LoopbackListener listener;
  listener.fd.reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener.fd) return Errno("socket");
  if (receive_buffer > 0) {
    setsockopt(listener.fd.get(), SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof(receive_buffer));
  }
  SetTimeouts(listener.fd.get());
  sockaddr_in address = Loopback(0);
  if (bind(listener.fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    return Errno("bind");
  }
  if (listen(listener.fd.get(), 16) != 0) return Errno("listen");
  socklen_t length = sizeof(address);
  if (getsockname(listener.fd.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return Errno("getsockname");
  }
  listener.port = ntohs(address.sin_port);
  return listener;
}

absl::StatusOr<UniqueFd> AcceptOne(const LoopbackListener& listener) {
  UniqueFd fd(accept4(listener.fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!fd) return Errno("accept");
  SetTimeouts(fd.get());
  return fd;
}

absl::StatusOr<TcpPair> ConnectedTcpPair() {
  absl::StatusOr<LoopbackListener> listener = ListenOnLoopback();
  if (!listener.ok()) return listener.status();
  TcpPair pair;
  pair.client.reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!pair.client) return Errno("socket");
  SetTimeouts(pair.client.get());
  sockaddr_in address = Loopback(listener->port);
  if (connect(pair.client.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    return Errno("connect");
  }
  absl::StatusOr<UniqueFd> server = AcceptOne(*listener);
  if (!server.ok()) return server.status();
  pair.server = *std::move(server);
  return pair;
}

absl::StatusOr<uint16_t> ClosedLoopbackPort() {
  absl::StatusOr<LoopbackListener> listener = ListenOnLoopback();
  if (!listener.ok()) return listener.status();
  return listener->port;  // Closed when `listener` goes out of scope.
}

absl::Status WriteAll(int fd, absl::Span<const uint8_t> data) {
  while (!data.empty()) {
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("send");
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<uint8_t>> ReadExactly(int fd, size_t n) {
  std::vector<uint8_t> bytes(n);
  size_t have = 0;
  while (have < n) {
    const ssize_t got = read(fd, bytes.data() + have, n - have);
    if (got < 0) {
      if (errno == EINTR) continue;
      return Errno(absl::StrCat("read (", have, " of ", n, " bytes read)"));
    }
    if (got == 0) return absl::DataLossError(absl::StrCat("EOF after ", have, " of ", n, " bytes"));
    have += static_cast<size_t>(got);
  }
  return bytes;
}

absl::StatusOr<std::vector<uint8_t>> ReadToEof(int fd) {
  std::vector<uint8_t> bytes;
  uint8_t buffer[65536];
  while (true) {
    const ssize_t got = read(fd, buffer, sizeof(buffer));
    if (got < 0) {
      if (errno == EINTR) continue;
      return Errno(absl::StrCat("read (", bytes.size(), " bytes before the error)"));
    }
    if (got == 0) return bytes;
    bytes.insert(bytes.end(), buffer, buffer + got);
  }
}

std::vector<uint8_t> PatternBytes(size_t n, uint8_t seed) {
  std::vector<uint8_t> bytes(n);
  for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<uint8_t>(seed + i * 131);
  return bytes;
}

}  // namespace ferry::dataplane::test
