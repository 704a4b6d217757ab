// A peer's socket address as the data plane keeps it: fixed size, comparable,
// printable. Flows store the address their frames came from (to answer there),
// route tables the addresses of connectors and backends.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ferry::dataplane {

struct SocketAddress {
  sockaddr_storage storage = {};
  socklen_t length = 0;

  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
  bool empty() const { return length == 0; }
  int family() const { return storage.ss_family; }

  // From a raw address of `len` bytes (at most sizeof(sockaddr_storage)).
  static SocketAddress From(const sockaddr* addr, socklen_t len);

  // "1.2.3.4:80", "[::1]:80"; "-" when empty.
  std::string ToString() const;

  // Same family, address and port (the bytes that matter; no padding compared).
  friend bool operator==(const SocketAddress& a, const SocketAddress& b);
  friend bool operator!=(const SocketAddress& a, const SocketAddress& b) { return !(a == b); }
};

// A 64-bit hash of the family, address and port: for hash maps keyed by peers
// and for rendezvous hashing.
uint64_t HashSocketAddress(const SocketAddress& address);

// Parses "host:port" / "[v6]:port" where host is an IP literal, or (when
// `resolve` is true) a name resolved with getaddrinfo (may block: control
// threads only). The port must be 1..65535. INVALID_ARGUMENT naming the address
// otherwise.
absl::StatusOr<SocketAddress> ParseSocketAddress(absl::string_view text, bool resolve = false);

}  // namespace ferry::dataplane
