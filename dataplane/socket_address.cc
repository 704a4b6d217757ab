#include "dataplane/socket_address.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/listen_address.h"

namespace ferry::dataplane {

SocketAddress SocketAddress::From(const sockaddr* addr, socklen_t len) {
  SocketAddress out;
  if (addr == nullptr || len == 0) return out;
  if (len > sizeof(out.storage)) len = sizeof(out.storage);
  std::memcpy(&out.storage, addr, len);
  out.length = len;
  return out;
}

std::string SocketAddress::ToString() const {
  char text[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET && length >= sizeof(sockaddr_in)) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&storage);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
    return absl::StrCat(text, ":", ntohs(in->sin_port));
  }
  if (family() == AF_INET6 && length >= sizeof(sockaddr_in6)) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&storage);
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
    return absl::StrCat("[", text, "]:", ntohs(in6->sin6_port));
  }
  return "-";
}

bool operator==(const SocketAddress& a, const SocketAddress& b) {
  if (a.family() != b.family()) return false;
  if (a.family() == AF_INET) {
    const auto* x = reinterpret_cast<const sockaddr_in*>(&a.storage);
    const auto* y = reinterpret_cast<const sockaddr_in*>(&b.storage);
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a.family() == AF_INET6) {
    const auto* x = reinterpret_cast<const sockaddr_in6*>(&a.storage);
    const auto* y = reinterpret_cast<const sockaddr_in6*>(&b.storage);
    return x->sin6_port == y->sin6_port &&
           std::memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(in6_addr)) == 0;
  }
  return a.length == b.length;
}

namespace {
uint64_t Mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}
}  // namespace

uint64_t HashSocketAddress(const SocketAddress& address) {
  uint64_t h = Mix(0, static_cast<uint64_t>(address.family()));
  if (address.family() == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&address.storage);
    h = Mix(h, in->sin_addr.s_addr);
    h = Mix(h, in->sin_port);
  } else if (address.family() == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&address.storage);
    uint64_t parts[2];
    std::memcpy(parts, &in6->sin6_addr, sizeof(parts));
    h = Mix(Mix(h, parts[0]), parts[1]);
    h = Mix(h, in6->sin6_port);
  }
  return h;
}

absl::StatusOr<SocketAddress> ParseSocketAddress(absl::string_view text, bool resolve) {
  std::string host;
  uint16_t port = 0;
  if (absl::Status s = ParseHostPort(text, PortRule::kNonZero, &host, &port); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("bad address \"", text, "\": ", s.message()));
  }
  SocketAddress out;
  auto* in = reinterpret_cast<sockaddr_in*>(&out.storage);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  if (inet_pton(AF_INET, host.c_str(), &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    out.length = sizeof(sockaddr_in);
    return out;
  }
  out.storage = {};
  if (inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    out.length = sizeof(sockaddr_in6);
    return out;
  }
  if (!resolve) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad address \"", text, "\": the host must be an IP address"));
  }
  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* result = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &result);
  if (rc != 0 || result == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad address \"", text, "\": cannot resolve ", host, ": ", gai_strerror(rc)));
  }
  out = SocketAddress::From(result->ai_addr, result->ai_addrlen);
  freeaddrinfo(result);
  if (out.family() == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&out.storage)->sin_port = htons(port);
  } else if (out.family() == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(&out.storage)->sin6_port = htons(port);
  }
  return out;
}

}  // namespace ferry::dataplane
