// Loopback UDP cost per datagram of the worker's batched I/O (SendBatch::Flush with sendmmsg,
// RecvBatch::Receive with recvmmsg) at several batch sizes, against one sendto and one recvfrom
// per datagram. Run: bazel run --config=opt //bench:datagram_batch_bench

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstdlib>

#include "benchmark/benchmark.h"
#include "common/unique_fd.h"
#include "dataplane/datagram_batch.h"

namespace ferry::dataplane {
namespace {

constexpr size_t kDatagramSize = 1400;  // A typical frame under a 1500-byte MTU.
constexpr size_t kBufferSize = 2048;

// A receiver and a sender on loopback; the receiver's buffer holds many batches.
struct LoopbackPair {
  UniqueFd receiver;
  UniqueFd sender;
  sockaddr_in to{};

  LoopbackPair() {
    receiver.reset(socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    sender.reset(socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    const int buffer = 4 << 20;
    if (setsockopt(receiver.get(), SOL_SOCKET, SO_RCVBUFFORCE, &buffer, sizeof(buffer)) != 0) {
      setsockopt(receiver.get(), SOL_SOCKET, SO_RCVBUF, &buffer, sizeof(buffer));
    }
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(to);
    if (bind(receiver.get(), reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0 ||
        getsockname(receiver.get(), reinterpret_cast<sockaddr*>(&to), &length) != 0) {
      std::abort();
    }
  }

  // Waits (at most a second) for the receiver to have something; false when nothing came.
  bool WaitReadable() {
    pollfd p{receiver.get(), POLLIN, 0};
    return poll(&p, 1, 1000) == 1;
  }
};

void BM_Batched(benchmark::State& state) {
  const size_t batch = static_cast<size_t>(state.range(0));
  LoopbackPair pair;
  SendBatch send(batch, kBufferSize);
  RecvBatch receive(batch, kBufferSize);
  size_t received = 0;
  size_t lost = 0;
  for (auto _ : state) {
    for (absl::Span<uint8_t> buffer = send.Next(); !buffer.empty(); buffer = send.Next()) {
      buffer[0] = 1;
      send.Commit(kDatagramSize, reinterpret_cast<const sockaddr*>(&pair.to), sizeof(pair.to));
    }
    const SendBatch::FlushResult flushed = send.Flush(pair.sender.get());
    size_t got = 0;
    while (got < flushed.sent) {
      const int n = receive.Receive(pair.receiver.get());
      if (n > 0) {
        got += static_cast<size_t>(n);
      } else if (n < 0 || !pair.WaitReadable()) {
        break;
      }
    }
    received += got;
    lost += flushed.sent - got + flushed.dropped;
  }
  state.SetItemsProcessed(static_cast<int64_t>(received));
  state.SetBytesProcessed(static_cast<int64_t>(received * kDatagramSize));
  state.counters["lost"] = static_cast<double>(lost);
}
BENCHMARK(BM_Batched)->Arg(1)->Arg(8)->Arg(32)->Arg(64);

void BM_OneCallPerDatagram(benchmark::State& state) {
  const size_t batch = static_cast<size_t>(state.range(0));
  LoopbackPair pair;
  uint8_t out[kBufferSize] = {1};
  uint8_t in[kBufferSize];
  size_t received = 0;
  size_t lost = 0;
  for (auto _ : state) {
    size_t sent = 0;
    for (size_t i = 0; i < batch; ++i) {
      if (sendto(pair.sender.get(), out, kDatagramSize, MSG_DONTWAIT,
                 reinterpret_cast<const sockaddr*>(&pair.to), sizeof(pair.to)) > 0) {
        ++sent;
      }
    }
    size_t got = 0;
    while (got < sent) {
      sockaddr_storage from;
      socklen_t from_length = sizeof(from);
      if (recvfrom(pair.receiver.get(), in, sizeof(in), MSG_DONTWAIT,
                   reinterpret_cast<sockaddr*>(&from), &from_length) >= 0) {
        ++got;
      } else if (!pair.WaitReadable()) {
        break;
      }
    }
    received += got;
    lost += batch - got;
  }
  state.SetItemsProcessed(static_cast<int64_t>(received));
  state.SetBytesProcessed(static_cast<int64_t>(received * kDatagramSize));
  state.counters["lost"] = static_cast<double>(lost);
}
BENCHMARK(BM_OneCallPerDatagram)->Arg(64);

}  // namespace
}  // namespace ferry::dataplane
