// Listen addresses: "host:port" or "[ipv6]:port" parsed into socket addresses (port 0 asks the
// kernel for a free port), and sockets bound there. Every Ferry server that opens its own sockets
// (the admin HTTP server, the Intermediate's DNS server) goes through here, so that all accept the
// same address forms and report trouble with the same status codes: INVALID_ARGUMENT for an
// address that is malformed, unresolvable or not on this host, ALREADY_EXISTS for a port another
// socket holds, PERMISSION_DENIED for a port below 1024 without CAP_NET_BIND_SERVICE.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ferry {

// Whether a port of 0 is acceptable: a listen address may use it (the kernel picks a free port),
// a dial address may not.
enum class PortRule { kNonZero, kAllowZero };

// Splits "host:port" or "[ipv6]:port" into the host (brackets removed) and the port, decimal
// digits only, 1 to 65535 under kNonZero and 0 to 65535 under kAllowZero. The host is only
// checked to be non-empty and, outside brackets, free of ':'. On error returns INVALID_ARGUMENT
// with what is wrong ("missing ']'", "the port must be a number from 1 to 65535"), without
// quoting `address`, and leaves `host` and `port` alone. Both must not be null.
absl::Status ParseHostPort(absl::string_view address, PortRule rule, std::string* host,
                           uint16_t* port);

// What the host of a listen address may be.
enum class HostForm {
  // An IPv4 literal ("0.0.0.0" for all addresses) or an IPv6 literal in brackets. Parsing never
  // blocks.
  kNumeric,
  // Also a name, resolved with getaddrinfo (which may block on the system resolver), and any
  // literal getaddrinfo takes.
  kNumericOrName,
};

// A parsed listen address.
struct ListenAddress {
  // The address as given, and what listens there ("admin HTTP server"): both only for messages.
  std::string text;
  std::string owner;
  // Where to bind, in order of preference, all with the same port: the address of a literal
  // host, or every IPv4 and IPv6 address a name resolves to. Never empty once parsed.
  std::vector<sockaddr_storage> candidates;

  // The port asked for; 0 means any free port.
  int port() const;
  // A copy whose candidates all have `port` (0 to 65535), e.g. to bind TCP on the port the
  // kernel gave a UDP socket.
  ListenAddress WithPort(int port) const;
};

// Parses `text` (port 0 allowed) for `owner`. Returns INVALID_ARGUMENT
// "bad listen address "<text>" for the <owner>: <why> (use ...)" when it is malformed, the host
// does not fit `host_form`, or a name does not resolve. Thread-safe.
absl::StatusOr<ListenAddress> ParseListenAddress(absl::string_view text, HostForm host_form,
                                                 absl::string_view owner);

enum class SocketType {
  kTcp,  // SOCK_STREAM, listening.
  kUdp,  // SOCK_DGRAM.
};

// Sets, on a new socket of `family` (AF_INET or AF_INET6), options that must come before bind:
// IPV6_V6ONLY, or SO_RCVBUF of a TCP listener (window scaling is fixed at the handshake).
using SocketSetup = std::function<void(int fd, int family)>;

// Binds a non-blocking, close-on-exec socket of `type` to the first candidate of `address` that
// takes it. A TCP socket gets SO_REUSEADDR (a restarted server binds while its old connections
// sit in TIME_WAIT; a live listener on the port still makes bind fail) and listens with a
// backlog of 128; a UDP socket does not (SO_REUSEADDR would let two UDP servers share the port).
// `setup`, when set, runs on each new socket before bind.
// Returns the fd, which the caller owns and must close, or the error of the last candidate:
// ALREADY_EXISTS when another socket holds the port (the message says "in use"),
// PERMISSION_DENIED for a privileged port, INVALID_ARGUMENT for an address that is not one of
// this host, else absl's errno mapping. Messages name address.owner and address.text.
// Thread-safe.
absl::StatusOr<int> BindListenSocket(const ListenAddress& address, SocketType type,
                                     const SocketSetup& setup = nullptr);

// The local port of the bound socket `fd`, or getsockname's error.
absl::StatusOr<int> LocalPort(int fd);

// The address a server bound to after listening on `listen` ("host:port",
// "[v6]:port", port possibly 0): the same host with the port the kernel gave,
// for ready files and logs. `listen` must already have parsed.
std::string BoundAddress(absl::string_view listen, int port);

}  // namespace ferry
