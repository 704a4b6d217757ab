#include "common/listen_address.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace ferry {
namespace {

constexpr int kListenBacklog = 128;

socklen_t LengthOf(const sockaddr_storage& storage) {
  return storage.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
}

void SetPort(sockaddr_storage* storage, int port) {
  const uint16_t network_port = htons(static_cast<uint16_t>(port));
  if (storage->ss_family == AF_INET) {
    reinterpret_cast<sockaddr_in*>(storage)->sin_port = network_port;
  } else {
    reinterpret_cast<sockaddr_in6*>(storage)->sin6_port = network_port;
  }
}

int PortOf(const sockaddr_storage& storage) {
  if (storage.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
}

// The addresses `host` stands for under `host_form`, or why none.
absl::StatusOr<std::vector<sockaddr_storage>> Resolve(const std::string& host, bool bracketed,
                                                      HostForm host_form) {
  std::vector<sockaddr_storage> out;
  if (host_form == HostForm::kNumeric) {
    // inet_pton, not getaddrinfo: it takes neither names nor shorthand such as "127.1".
    sockaddr_storage storage{};
    if (bracketed) {
      auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
      if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) != 1) {
        return absl::InvalidArgumentError("the host in brackets must be a numeric IPv6 address");
      }
      v6->sin6_family = AF_INET6;
    } else {
      auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
      if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) != 1) {
        return absl::InvalidArgumentError(
            "the host must be a numeric IPv4 address (0.0.0.0 for all) or an IPv6 address in "
            "brackets");
      }
      v4->sin_family = AF_INET;
    }
    out.push_back(storage);
    return out;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;  // One result per address, not one per socket type.
  addrinfo* results = nullptr;
  const int gai = getaddrinfo(host.c_str(), nullptr, &hints, &results);
  if (gai != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot resolve \"", host, "\": ", gai_strerror(gai)));
  }
  for (const addrinfo* ai = results; ai != nullptr; ai = ai->ai_next) {
    if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
        ai->ai_addrlen > sizeof(sockaddr_storage)) {
      continue;
    }
    sockaddr_storage storage{};
    std::memcpy(&storage, ai->ai_addr, ai->ai_addrlen);
    out.push_back(storage);
  }
  freeaddrinfo(results);
  if (out.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("\"", host, "\" has no IPv4 or IPv6 address"));
  }
  return out;
}

// The status for bind() failing with `error`, spelling out the usual fixes.
absl::Status BindError(int error, std::string what) {
  absl::StrAppend(&what, ": ", std::strerror(error));
  switch (error) {
    case EADDRINUSE:
      // Not absl's errno mapping (FAILED_PRECONDITION), which servers use for "started twice".
      return absl::AlreadyExistsError(
          absl::StrCat(what, " (another socket holds the port; pick another port or stop it)"));
    case EACCES:
      return absl::PermissionDeniedError(
          absl::StrCat(what, " (ports below 1024 need CAP_NET_BIND_SERVICE)"));
    case EADDRNOTAVAIL:
      return absl::InvalidArgumentError(absl::StrCat(what, " (not an address of this host)"));
    default:
      return absl::ErrnoToStatus(error, what);
  }
}

// One socket of `type` bound to `candidate`, listening when TCP.
absl::StatusOr<int> BindOne(const ListenAddress& address, const sockaddr_storage& candidate,
                            SocketType type, const SocketSetup& setup) {
  const bool tcp = type == SocketType::kTcp;
  const char* const protocol = tcp ? "TCP" : "UDP";
  const int fd = socket(candidate.ss_family,
                        (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot create a ", protocol, " socket for the ",
                                                   address.owner, " at \"", address.text, "\""));
  }
  if (tcp) {
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  }
  if (setup) setup(fd, candidate.ss_family);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&candidate), LengthOf(candidate)) != 0) {
    const int error = errno;
    close(fd);
    return BindError(error, absl::StrCat("cannot bind the ", address.owner, " (", protocol,
                                         ") to \"", address.text, "\""));
  }
  if (tcp && listen(fd, kListenBacklog) != 0) {
    const int error = errno;
    close(fd);
    return absl::ErrnoToStatus(
        error, absl::StrCat("cannot listen on \"", address.text, "\" for the ", address.owner));
  }
  return fd;
}

}  // namespace

absl::Status ParseHostPort(absl::string_view address, PortRule rule, std::string* host,
                           uint16_t* port) {
  absl::string_view host_part;
  absl::string_view port_part;
  if (absl::StartsWith(address, "[")) {
    const size_t close = address.find(']');
    if (close == absl::string_view::npos) return absl::InvalidArgumentError("missing ']'");
    host_part = address.substr(1, close - 1);
    if (close + 1 >= address.size() || address[close + 1] != ':') {
      return absl::InvalidArgumentError("missing :port after ']'");
    }
    port_part = address.substr(close + 2);
  } else {
    const size_t colon = address.rfind(':');
    if (colon == absl::string_view::npos) return absl::InvalidArgumentError("missing :port");
    host_part = address.substr(0, colon);
    if (host_part.find(':') != absl::string_view::npos) {
      return absl::InvalidArgumentError("an IPv6 address must be in brackets");
    }
    port_part = address.substr(colon + 1);
  }
  if (host_part.empty()) return absl::InvalidArgumentError("missing host");
  const uint32_t min_port = rule == PortRule::kAllowZero ? 0 : 1;
  uint32_t value = 0;
  // SimpleAtoi alone would also take "+80", " 80" and any number of leading zeros.
  if (port_part.empty() || port_part.size() > 5 ||
      !std::all_of(port_part.begin(), port_part.end(),
                   [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); }) ||
      !absl::SimpleAtoi(port_part, &value) || value < min_port || value > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("the port must be a number from ", min_port, " to 65535"));
  }
  *host = std::string(host_part);
  *port = static_cast<uint16_t>(value);
  return absl::OkStatus();
}

int ListenAddress::port() const { return candidates.empty() ? 0 : PortOf(candidates.front()); }

ListenAddress ListenAddress::WithPort(int port) const {
  ListenAddress copy = *this;
  for (sockaddr_storage& candidate : copy.candidates) SetPort(&candidate, port);
  return copy;
}

absl::StatusOr<ListenAddress> ParseListenAddress(absl::string_view text, HostForm host_form,
                                                 absl::string_view owner) {
  const auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad listen address \"", text, "\" for the ", owner, ": ", why,
        host_form == HostForm::kNumeric
            ? " (use ipv4:port or [ipv6]:port with a numeric host, e.g. 127.0.0.1:8053 or "
              "[::1]:8053; 0.0.0.0 or [::] for all addresses; port 0 picks a free port)"
            : " (use host:port or [ipv6]:port, e.g. 127.0.0.1:8080, localhost:8080 or "
              "[::1]:8080; 0.0.0.0 or [::] for all addresses; port 0 picks a free port)"));
  };
  std::string host;
  uint16_t port = 0;
  if (absl::Status split = ParseHostPort(text, PortRule::kAllowZero, &host, &port); !split.ok()) {
    return bad(split.message());
  }
  absl::StatusOr<std::vector<sockaddr_storage>> candidates =
      Resolve(host, absl::StartsWith(text, "["), host_form);
  if (!candidates.ok()) return bad(candidates.status().message());

  ListenAddress out;
  out.text = std::string(text);
  out.owner = std::string(owner);
  out.candidates = *std::move(candidates);
  for (sockaddr_storage& candidate : out.candidates) SetPort(&candidate, port);
  return out;
}

absl::StatusOr<int> BindListenSocket(const ListenAddress& address, SocketType type,
                                     const SocketSetup& setup) {
  absl::Status last_error = absl::InvalidArgumentError(absl::StrCat(
      "listen address \"", address.text, "\" for the ", address.owner, " has no address to bind"));
  for (const sockaddr_storage& candidate : address.candidates) {
    absl::StatusOr<int> fd = BindOne(address, candidate, type, setup);
    if (fd.ok()) return fd;
    last_error = fd.status();
  }
  return last_error;
}

absl::StatusOr<int> LocalPort(int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof(storage);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0) {
    return absl::ErrnoToStatus(errno, "cannot read the port a socket is bound to");
  }
  if (storage.ss_family != AF_INET && storage.ss_family != AF_INET6) {
    return absl::InvalidArgumentError("the socket is not an IPv4 or IPv6 socket");
  }
  return PortOf(storage);
}

std::string BoundAddress(absl::string_view listen, int port) {
  return absl::StrCat(listen.substr(0, listen.rfind(':')), ":", port);
}

}  // namespace ferry
