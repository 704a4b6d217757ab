#include "tests/backends/tcp_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/listen_address.h"
#include "tests/backends/pattern.h"

namespace ferry::backends {
namespace {

constexpr size_t kChunk = 64 * 1024;

class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() {
    if (fd_ >= 0) close(fd_);
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

absl::StatusOr<sockaddr_in> ParseIpv4(const std::string& address) {
  std::string host;
  uint16_t port = 0;
  if (absl::Status s = ParseHostPort(address, PortRule::kNonZero, &host, &port); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("\"", address, "\": ", s.message()));
  }
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  if (inet_pton(AF_INET, host.c_str(), &sin.sin_addr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", address, "\": the host must be an IPv4 literal such as 127.0.0.1"));
  }
  return sin;
}

int PollMillis(absl::Time deadline) {
  return static_cast<int>(
      std::clamp<int64_t>(absl::ToInt64Milliseconds(deadline - absl::Now()), 0, 1000));
}

}  // namespace

TcpUpload TcpUpload::Of(std::string data) {
  auto shared = std::make_shared<const std::string>(std::move(data));
  return TcpUpload{shared->size(), [shared](uint64_t offset, absl::Span<uint8_t> out) {
                     std::memcpy(out.data(), shared->data() + offset, out.size());
                   }};
}

TcpUpload TcpUpload::Pattern(uint64_t size, uint64_t pattern_offset) {
  return TcpUpload{size, [pattern_offset](uint64_t offset, absl::Span<uint8_t> out) {
                     FillPattern(pattern_offset + offset, out);
                   }};
}

absl::StatusOr<TcpReply> TcpExchange(const std::string& address, const TcpUpload& upload,
                                     const TcpExchangeOptions& options) {
  const absl::Time deadline = absl::Now() + options.timeout;
  absl::StatusOr<sockaddr_in> sin = ParseIpv4(address);
  if (!sin.ok()) return sin.status();
  ScopedFd fd(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  const int one = 1;
  setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

  if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&*sin), sizeof(*sin)) != 0 &&
      errno != EINPROGRESS) {
    return absl::UnavailableError(absl::StrCat("connect ", address, ": ", std::strerror(errno)));
  }
  while (true) {
    pollfd p{fd.get(), POLLOUT, 0};
    const int r = poll(&p, 1, PollMillis(deadline));
    if (r > 0) break;
    if (r < 0 && errno != EINTR) {
      return absl::InternalError(absl::StrCat("poll: ", std::strerror(errno)));
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat("connect ", address, " timed out"));
    }
  }
  int error = 0;
  socklen_t error_size = sizeof(error);
  getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &error_size);
  if (error == ECONNRESET) {
    // Accepted, then reset before this side looked: the peer's doing, as below.
    return absl::DataLossError(absl::StrCat("connection reset: ", address, " right after connect"));
  }
  if (error != 0) {
    return absl::UnavailableError(absl::StrCat("connect ", address, ": ", std::strerror(error)));
  }

  TcpReply reply;
  Sha256 sha;
  uint64_t sent = 0;
  bool write_closed = false;
  std::vector<uint8_t> out(kChunk);
  size_t out_begin = 0;
  size_t out_end = 0;
  std::vector<uint8_t> in(kChunk);
  auto progress = [&] {
    return absl::StrCat(address, " after sending ", sent, " of ", upload.size,
                        " bytes and receiving ", reply.size);
  };
  while (true) {
    // Refill the send buffer from the upload.
    if (out_begin == out_end && sent < upload.size) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, upload.size - sent));
      upload.fill(sent, absl::MakeSpan(out.data(), n));
      out_begin = 0;
      out_end = n;
    }
    if (!write_closed && out_begin == out_end && sent == upload.size) {
      shutdown(fd.get(), SHUT_WR);
      write_closed = true;
    }
    pollfd p{fd.get(), static_cast<short>(POLLIN | (write_closed ? 0 : POLLOUT)), 0};
    const int r = poll(&p, 1, PollMillis(deadline));
    if (r < 0 && errno != EINTR) {
      return absl::InternalError(absl::StrCat("poll: ", std::strerror(errno)));
    }
    if (r <= 0) {
      if (absl::Now() >= deadline) {
        return absl::DeadlineExceededError(absl::StrCat("no EOF from ", progress(), " within ",
                                                        absl::FormatDuration(options.timeout)));
      }
      continue;
    }
    if ((p.revents & POLLOUT) != 0 && out_begin < out_end) {
      const ssize_t n =
          send(fd.get(), out.data() + out_begin, out_end - out_begin, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        out_begin += static_cast<size_t>(n);
        sent += static_cast<uint64_t>(n);
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        const int e = errno;
        if (e == ECONNRESET || e == EPIPE) {
          return absl::DataLossError(absl::StrCat("connection reset: ", progress()));
        }
        return absl::InternalError(absl::StrCat("send: ", std::strerror(e), ": ", progress()));
      }
    }
    if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      const ssize_t n = recv(fd.get(), in.data(), in.size(), MSG_DONTWAIT);
      if (n == 0) break;  // The server's EOF.
      if (n > 0) {
        const size_t size = static_cast<size_t>(n);
        sha.Update(absl::MakeConstSpan(in.data(), size));
        if (reply.head.size() < options.keep_bytes) {
          reply.head.append(reinterpret_cast<const char*>(in.data()),
                            std::min(size, options.keep_bytes - reply.head.size()));
        }
        reply.size += size;
      } else if (errno != EAGAIN && errno != EINTR) {
        const int e = errno;
        if (e == ECONNRESET) {
          return absl::DataLossError(absl::StrCat("connection reset: ", progress()));
        }
        return absl::InternalError(absl::StrCat("recv: ", std::strerror(e), ": ", progress()));
      }
    }
  }
  reply.sha256_hex = sha.HexDigest();
  return reply;
}

absl::StatusOr<HttpResponse> ParseHttpResponse(absl::string_view raw) {
  const size_t end = raw.find("\r\n\r\n");
  if (end == absl::string_view::npos) {
    return absl::DataLossError(absl::StrCat("no end of the HTTP header in ", raw.size(), " bytes"));
  }
  std::vector<absl::string_view> lines = absl::StrSplit(raw.substr(0, end), "\r\n");
  std::vector<absl::string_view> status_line = absl::StrSplit(lines[0], absl::MaxSplits(' ', 2));
  HttpResponse response;
  if (status_line.size() < 2 || !absl::StartsWith(status_line[0], "HTTP/1.") ||
      !absl::SimpleAtoi(status_line[1], &response.status)) {
    return absl::DataLossError(absl::StrCat("not an HTTP status line: \"", lines[0], "\""));
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == absl::string_view::npos) {
      return absl::DataLossError(absl::StrCat("not an HTTP header: \"", lines[i], "\""));
    }
    response.headers[absl::AsciiStrToLower(lines[i].substr(0, colon))] =
        std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
  }
  response.body = std::string(raw.substr(end + 4));
  auto length = response.headers.find("content-length");
  uint64_t expected = 0;
  if (length != response.headers.end() && absl::SimpleAtoi(length->second, &expected) &&
      response.body.size() < expected) {
    return absl::DataLossError(
        absl::StrCat("body cut short: ", response.body.size(), " of ", expected, " bytes"));
  }
  return response;
}

}  // namespace ferry::backends
