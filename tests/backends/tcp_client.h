// A TCP client for tests that talk to the test backends, directly or through a
// Ferry tunnel: it connects with a deadline, then writes its upload and reads
// the answer at the same time (poll on a non-blocking socket), so an echo can
// never deadlock on full buffers; after the last byte it half-closes, and it
// reads until the server's EOF. What it received is hashed and counted as it
// arrives, and only the first bytes are kept, so 64 MiB transfers need no
// 64 MiB buffer.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace ferry::backends {

// What a client sends: `size` bytes, produced in order by `fill(offset, out)`,
// which writes bytes [offset, offset + out.size()) of the upload into `out`.
struct TcpUpload {
  uint64_t size = 0;
  std::function<void(uint64_t offset, absl::Span<uint8_t> out)> fill;

  // Exactly `data`.
  static TcpUpload Of(std::string data);
  // Pattern bytes [pattern_offset, pattern_offset + size) (tests/backends/pattern.h),
  // so two uploads with different offsets differ.
  static TcpUpload Pattern(uint64_t size, uint64_t pattern_offset = 0);
};

// What a client received before the server's EOF.
struct TcpReply {
  uint64_t size = 0;       // bytes received in all
  std::string sha256_hex;  // SHA-256 of all of them
  std::string head;        // the first TcpExchangeOptions::keep_bytes of them
};

struct TcpExchangeOptions {
  // For everything: connect, upload, and reading to EOF.
  absl::Duration timeout = absl::Seconds(30);
  // How many received bytes TcpReply::head keeps.
  size_t keep_bytes = 1 << 20;
};

// Connects to `address` ("127.0.0.1:port"), sends `upload`, half-closes
// (shutdown SHUT_WR) and reads until the peer's EOF, reading all along.
// Errors: INVALID_ARGUMENT for a malformed address; UNAVAILABLE when the
// connection is refused or fails to open; DATA_LOSS when the peer resets the
// connection; DEADLINE_EXCEEDED when not done within options.timeout. Every
// message says how many bytes were sent and received by then. Thread-safe
// (uses nothing shared), so many connections may run on many threads.
absl::StatusOr<TcpReply> TcpExchange(const std::string& address, const TcpUpload& upload,
                                     const TcpExchangeOptions& options = {});

// An HTTP/1.1 response, split.
struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

// Splits `raw` (a whole response, as read until EOF) at its status line and
// headers. DATA_LOSS when `raw` is not an HTTP/1.x response or is cut short of
// its Content-Length.
absl::StatusOr<HttpResponse> ParseHttpResponse(absl::string_view raw);

}  // namespace ferry::backends
