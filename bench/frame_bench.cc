// Per-frame costs of the data-plane foundation: header decode, AEAD seal and
// open (AES-256-GCM and ChaCha20-Poly1305, 64 B and 1400 B payloads) and the
// replay window. Run: bazel run --config=opt //bench:frame_bench

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "benchmark/benchmark.h"
#include "dataplane/aead.h"
#include "dataplane/frame.h"
#include "dataplane/replay_window.h"

namespace ferry::dataplane {
namespace {

FrameHeader BenchHeader(Direction direction) {
  FrameHeader header;
  header.type = FrameType::kData;
  header.session_id = 0x1122334455667788;
  header.service_id = 7;
  header.flow_id = 0xABCDEF;
  header.counter = MakeCounter(direction, 1);
  return header;
}

// A laid-out, unsealed frame with `payload_size` payload bytes.
std::vector<uint8_t> PlainFrame(size_t payload_size, Direction direction) {
  std::vector<uint8_t> frame(FrameSize(payload_size), 0x5A);
  if (!EncodeFrame(BenchHeader(direction), payload_size, absl::MakeSpan(frame)).ok()) {
    std::abort();
  }
  return frame;
}

HopAead MakeAead(AeadAlgorithm algorithm, HopRole role) {
  const std::vector<uint8_t> key(kAeadKeySize, 0x42);
  absl::StatusOr<HopAead> aead = HopAead::Create(algorithm, key, role);
  if (!aead.ok()) std::abort();
  return std::move(aead).value();
}

void BM_DecodeFrame(benchmark::State& state) {
  const std::vector<uint8_t> frame =
      PlainFrame(static_cast<size_t>(state.range(0)), Direction::kInitiatorToResponder);
  for (auto _ : state) {
    FrameResult<FrameView> view = DecodeFrame(frame);
    benchmark::DoNotOptimize(view);
  }
}
BENCHMARK(BM_DecodeFrame)->ArgName("payload")->Arg(64)->Arg(1400);

void BM_EncodeHeader(benchmark::State& state) {
  std::vector<uint8_t> frame = PlainFrame(64, Direction::kInitiatorToResponder);
  FrameHeader header = BenchHeader(Direction::kInitiatorToResponder);
  for (auto _ : state) {
    ++header.counter;
    FrameResult<size_t> size = EncodeFrame(header, 64, absl::MakeSpan(frame));
    benchmark::DoNotOptimize(size);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_EncodeHeader);

// Seals the same buffer over and over: each round encrypts the previous
// round's ciphertext, which costs the same as plaintext.
void BM_Seal(benchmark::State& state) {
  const auto algorithm = static_cast<AeadAlgorithm>(state.range(0));
  const size_t payload_size = static_cast<size_t>(state.range(1));
  HopAead aead = MakeAead(algorithm, HopRole::kInitiator);
  std::vector<uint8_t> frame = PlainFrame(payload_size, Direction::kInitiatorToResponder);
  for (auto _ : state) {
    if (aead.Seal(absl::MakeSpan(frame), payload_size) != AeadStatus::kOk) {
      state.SkipWithError("Seal failed");
      break;
    }
    benchmark::ClobberMemory();
  }
  state.SetLabel(std::string(AeadAlgorithmName(algorithm)));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(payload_size));
}

// Open decrypts in place, so every round first copies a pristine sealed frame
// into the work buffer; BM_CopyFrame measures that copy alone.
void BM_Open(benchmark::State& state) {
  const auto algorithm = static_cast<AeadAlgorithm>(state.range(0));
  const size_t payload_size = static_cast<size_t>(state.range(1));
  HopAead sender = MakeAead(algorithm, HopRole::kInitiator);
  HopAead receiver = MakeAead(algorithm, HopRole::kResponder);
  std::vector<uint8_t> sealed = PlainFrame(payload_size, Direction::kInitiatorToResponder);
  if (sender.Seal(absl::MakeSpan(sealed), payload_size) != AeadStatus::kOk) std::abort();
  std::vector<uint8_t> work(sealed.size());
  for (auto _ : state) {
    std::memcpy(work.data(), sealed.data(), sealed.size());
    if (receiver.Open(absl::MakeSpan(work)) != AeadStatus::kOk) {
      state.SkipWithError("Open failed");
      break;
    }
    benchmark::ClobberMemory();
  }
  state.SetLabel(std::string(AeadAlgorithmName(algorithm)) + " incl. copy");
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(payload_size));
}

void BM_CopyFrame(benchmark::State& state) {
  const std::vector<uint8_t> sealed =
      PlainFrame(static_cast<size_t>(state.range(0)), Direction::kInitiatorToResponder);
  std::vector<uint8_t> work(sealed.size());
  for (auto _ : state) {
    std::memcpy(work.data(), sealed.data(), sealed.size());
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_CopyFrame)->ArgName("payload")->Arg(64)->Arg(1400);

constexpr int64_t kAes = static_cast<int64_t>(AeadAlgorithm::kAes256Gcm);
constexpr int64_t kChaCha = static_cast<int64_t>(AeadAlgorithm::kChaCha20Poly1305);
BENCHMARK(BM_Seal)->ArgNames({"alg", "payload"})->ArgsProduct({{kAes, kChaCha}, {64, 1400}});
BENCHMARK(BM_Open)->ArgNames({"alg", "payload"})->ArgsProduct({{kAes, kChaCha}, {64, 1400}});

// The common case: each frame one ahead of the last.
void BM_ReplayWindowInOrder(benchmark::State& state) {
  ReplayWindow window;
  uint64_t counter = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(window.CheckAndUpdate(counter++));
  }
}
BENCHMARK(BM_ReplayWindowInOrder);

// Reordering within the window: counters arrive in swapped pairs and every
// eighth frame is a duplicate (rejected).
void BM_ReplayWindowReordered(benchmark::State& state) {
  ReplayWindow window;
  uint64_t base = 0;
  uint64_t i = 0;
  for (auto _ : state) {
    const uint64_t step = i++ % 8;
    const uint64_t counter = step == 7 ? base + 5 : base + (step ^ 1);
    if (step == 7) base += 7;
    benchmark::DoNotOptimize(window.CheckAndUpdate(counter));
  }
}
BENCHMARK(BM_ReplayWindowReordered);

}  // namespace
}  // namespace ferry::dataplane
