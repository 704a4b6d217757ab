// Checks that HopAead::Seal and HopAead::Open do not allocate: every OpenSSL
// allocation goes through hooks installed in main() before OpenSSL's first
// allocation, and the per-frame calls must not reach them.

#include <openssl/crypto.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "dataplane/aead.h"
#include "dataplane/frame.h"
#include "dataplane/testing/frame_builder.h"
#include "gtest/gtest.h"

namespace ferry::dataplane {
namespace {

std::atomic<long> openssl_allocations{0};

void* CountingMalloc(size_t size, const char* /*file*/, int /*line*/) {
  openssl_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(size);
}

void* CountingRealloc(void* ptr, size_t size, const char* /*file*/, int /*line*/) {
  openssl_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::realloc(ptr, size);
}

void PlainFree(void* ptr, const char* /*file*/, int /*line*/) { std::free(ptr); }

class AeadAllocationTest : public ::testing::TestWithParam<AeadAlgorithm> {};

TEST_P(AeadAllocationTest, HooksSeeCreatesAllocations) {
  // Without this the zero below could mean the hooks were never installed.
  const long before = openssl_allocations.load();
  std::vector<uint8_t> key(kAeadKeySize, 7);
  absl::StatusOr<HopAead> aead = HopAead::Create(GetParam(), key, HopRole::kInitiator);
  ASSERT_TRUE(aead.ok()) << aead.status();
  EXPECT_GT(openssl_allocations.load(), before);
}

TEST_P(AeadAllocationTest, SealAndOpenDoNotAllocate) {
  std::vector<uint8_t> key(kAeadKeySize, 7);
  absl::StatusOr<HopAead> sender = HopAead::Create(GetParam(), key, HopRole::kInitiator);
  absl::StatusOr<HopAead> receiver = HopAead::Create(GetParam(), key, HopRole::kResponder);
  ASSERT_TRUE(sender.ok() && receiver.ok());

  // Frames laid out ahead of time, so that the loop allocates nothing itself.
  constexpr int kFrames = 200;
  std::vector<std::vector<uint8_t>> frames;
  for (int i = 0; i < kFrames; ++i) {
    frames.push_back(test::FrameBuilder()
                         .FlowId(3)
                         .Counter(MakeCounter(Direction::kInitiatorToResponder, i))
                         .PayloadOfSize(1400, static_cast<uint8_t>(i))
                         .Build());
  }
  // Warm-up on other objects: a first failure may set up OpenSSL's per-thread
  // error state, once per thread. The measured objects are fresh.
  {
    absl::StatusOr<HopAead> warm_sender = HopAead::Create(GetParam(), key, HopRole::kInitiator);
    absl::StatusOr<HopAead> warm_receiver = HopAead::Create(GetParam(), key, HopRole::kResponder);
    ASSERT_TRUE(warm_sender.ok() && warm_receiver.ok());
    std::vector<uint8_t> warm = frames[0];
    ASSERT_EQ(warm_sender->Seal(absl::MakeSpan(warm), 1400), AeadStatus::kOk);
    warm.back() ^= 1;
    ASSERT_EQ(warm_receiver->Open(absl::MakeSpan(warm)), AeadStatus::kBadTag);
  }

  const long before = openssl_allocations.load();
  for (int i = 0; i < kFrames; ++i) {
    absl::Span<uint8_t> frame = absl::MakeSpan(frames[i]);
    ASSERT_EQ(sender->Seal(frame, 1400), AeadStatus::kOk);
    if (i % 2 == 1) frame[kHeaderSize] ^= 1;  // Every other frame fails to open.
    ASSERT_EQ(receiver->Open(frame), i % 2 == 1 ? AeadStatus::kBadTag : AeadStatus::kOk);
  }
  EXPECT_EQ(openssl_allocations.load(), before);
}

INSTANTIATE_TEST_SUITE_P(BothAlgorithms, AeadAllocationTest,
                         ::testing::Values(AeadAlgorithm::kAes256Gcm,
                                           AeadAlgorithm::kChaCha20Poly1305),
                         [](const ::testing::TestParamInfo<AeadAlgorithm>& info) {
                           return std::string(AeadAlgorithmName(info.param));
                         });

}  // namespace
}  // namespace ferry::dataplane

int main(int argc, char** argv) {
  // Must come before anything makes OpenSSL allocate; OpenSSL refuses it after.
  if (CRYPTO_set_mem_functions(ferry::dataplane::CountingMalloc, ferry::dataplane::CountingRealloc,
                               ferry::dataplane::PlainFree) != 1) {
    std::fprintf(stderr, "OpenSSL allocated before main(); cannot install the counting hooks\n");
    return 2;
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
