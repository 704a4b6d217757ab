// Loopback TCP plumbing for data-plane socket tests: listeners on 127.0.0.1 with a
// kernel-picked port, connected pairs, and blocking raw reads and writes with a deadline, so that
// a test can play the remote end of a StreamConn or ByteSocket byte by byte.
//
// Every socket made here has 10-second send and receive timeouts: a broken test fails instead of
// hanging.

#ifndef FERRY_DATAPLANE_TESTING_LOOPBACK_TCP_H_
#define FERRY_DATAPLANE_TESTING_LOOPBACK_TCP_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/unique_fd.h"

namespace ferry::dataplane::test {

// A listening TCP socket on 127.0.0.1 and the port the kernel gave it. `receive_buffer`, when
// positive, is set as SO_RCVBUF before listen (accepted sockets inherit it).
struct LoopbackListener {
  UniqueFd fd;
  uint16_t port = 0;
  std::string address() const;  // "127.0.0.1:<port>"
};
absl::StatusOr<LoopbackListener> ListenOnLoopback(int receive_buffer = 0);

// Accepts one connection on `listener` (blocking, with the timeout).
absl::StatusOr<UniqueFd> AcceptOne(const LoopbackListener& listener);

// Two connected blocking TCP sockets over loopback.
struct TcpPair {
  UniqueFd client;
  UniqueFd server;
};
absl::StatusOr<TcpPair> ConnectedTcpPair();

// A port on 127.0.0.1 with nothing listening (bound once, then closed).
absl::StatusOr<uint16_t> ClosedLoopbackPort();

// Writes all of `data` to the blocking `fd`.
absl::Status WriteAll(int fd, absl::Span<const uint8_t> data);

// Reads exactly `n` bytes from the blocking `fd`; DATA_LOSS on EOF first.
absl::StatusOr<std::vector<uint8_t>> ReadExactly(int fd, size_t n);

// Reads until EOF: OK with the bytes read, or the read error (e.g. ECONNRESET's status).
absl::StatusOr<std::vector<uint8_t>> ReadToEof(int fd);

// Bytes of a deterministic pattern: byte i is (seed + i * 131) mod 256.
std::vector<uint8_t> PatternBytes(size_t n, uint8_t seed);

}  // namespace ferry::dataplane::test

#endif  // FERRY_DATAPLANE_TESTING_LOOPBACK_TCP_H_
