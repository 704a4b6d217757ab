#include "dataplane/aead.h"

#include <openssl/evp.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/string_view.h"
#include "dataplane/big_endian.h"
#include "dataplane/drop_reason.h"
#include "dataplane/frame.h"
#include "dataplane/testing/frame_builder.h"
#include "gtest/gtest.h"

namespace ferry::dataplane {
namespace {

using test::FrameBuilder;

std::vector<uint8_t> Hex(absl::string_view hex) {
  const std::string bytes = absl::HexStringToBytes(hex);
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

std::vector<uint8_t> TestKey(uint8_t first = 0) {
  std::vector<uint8_t> key(kAeadKeySize);
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(first + i);
  return key;
}

HopAead MakeAead(AeadAlgorithm algorithm, HopRole role, const std::vector<uint8_t>& key) {
  absl::StatusOr<HopAead> aead = HopAead::Create(algorithm, key, role);
  EXPECT_TRUE(aead.ok()) << aead.status();
  return std::move(aead).value();
}

// ---------------------------------------------------------------------------
// Counters and directions.

TEST(CounterTest, TopBitIsTheDirection) {
  EXPECT_EQ(MakeCounter(Direction::kInitiatorToResponder, 7), 7u);
  EXPECT_EQ(MakeCounter(Direction::kResponderToInitiator, 7), kDirectionBit | 7u);
  EXPECT_EQ(CounterDirection(7), Direction::kInitiatorToResponder);
  EXPECT_EQ(CounterDirection(kDirectionBit | 7), Direction::kResponderToInitiator);
  EXPECT_EQ(CounterSequence(kDirectionBit | 7), 7u);
  EXPECT_EQ(CounterSequence(kMaxSequence), kMaxSequence);
  // A sequence past kMaxSequence cannot leak into the direction bit.
  EXPECT_EQ(MakeCounter(Direction::kInitiatorToResponder, kDirectionBit | 3), 3u);
}

TEST(CounterTest, EachRoleSendsWhatThePeerReceives) {
  EXPECT_EQ(SendDirection(HopRole::kInitiator), Direction::kInitiatorToResponder);
  EXPECT_EQ(ReceiveDirection(HopRole::kResponder), Direction::kInitiatorToResponder);
  EXPECT_EQ(SendDirection(HopRole::kResponder), Direction::kResponderToInitiator);
  EXPECT_EQ(ReceiveDirection(HopRole::kInitiator), Direction::kResponderToInitiator);
}

// ---------------------------------------------------------------------------
// Known-answer tests on the raw AEAD.

struct KnownAnswer {
  std::string name;
  AeadAlgorithm algorithm;
  std::string key;
  std::string nonce;
  std::string aad;
  std::string plaintext;
  std::string ciphertext;
  std::string tag;
};

// AES-256-GCM: test cases 13-16 of McGrew & Viega, "The Galois/Counter Mode of
// Operation (GCM)", the vectors NIST's GCM specification (SP 800-38D) uses.
// ChaCha20-Poly1305: RFC 8439 section 2.8.2.
std::vector<KnownAnswer> KnownAnswers() {
  const std::string kGcmKey = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
  const std::string kGcmPlaintext =
      "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
      "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
  const std::string kGcmCiphertext =
      "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
      "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad";
  return {
      {"gcm_test_case_13", AeadAlgorithm::kAes256Gcm, std::string(64, '0'), std::string(24, '0'),
       "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
      {"gcm_test_case_14", AeadAlgorithm::kAes256Gcm, std::string(64, '0'), std::string(24, '0'),
       "", std::string(32, '0'), "cea7403d4d606b6e074ec5d3baf39d18",
       "d0d1c8a799996bf0265b98b5d48ab919"},
      {"gcm_test_case_15", AeadAlgorithm::kAes256Gcm, kGcmKey, "cafebabefacedbaddecaf888", "",
       kGcmPlaintext, kGcmCiphertext, "b094dac5d93471bdec1a502270e3cc6c"},
      {"gcm_test_case_16", AeadAlgorithm::kAes256Gcm, kGcmKey, "cafebabefacedbaddecaf888",
       "feedfacedeadbeeffeedfacedeadbeefabaddad2", kGcmPlaintext.substr(0, 120),
       kGcmCiphertext.substr(0, 120), "76fc6ece0f4e1768cddf8853bb2d551b"},
      {"rfc8439_2_8_2", AeadAlgorithm::kChaCha20Poly1305,
       "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
       "070000004041424344454647", "50515253c0c1c2c3c4c5c6c7",
       absl::BytesToHexString("Ladies and Gentlemen of the class of '99: If I could offer you "
                              "only one tip for the future, sunscreen would be it."),
       "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
       "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
       "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
       "3ff4def08e4b7a9de576d26586cec64b6116",
       "1ae10b594f09e26a7e902ecbd0600691"},
  };
}

class KnownAnswerTest : public ::testing::TestWithParam<KnownAnswer> {};

TEST_P(KnownAnswerTest, SealProducesThePublishedCiphertextAndTag) {
  const KnownAnswer& v = GetParam();
  HopAead aead = MakeAead(v.algorithm, HopRole::kInitiator, Hex(v.key));
  std::vector<uint8_t> data = Hex(v.plaintext);
  std::vector<uint8_t> tag(kTagSize);
  ASSERT_EQ(aead.SealDetached(Hex(v.nonce), Hex(v.aad), absl::MakeSpan(data), absl::MakeSpan(tag)),
            AeadStatus::kOk);
  EXPECT_EQ(data, Hex(v.ciphertext));
  EXPECT_EQ(tag, Hex(v.tag));
}

TEST_P(KnownAnswerTest, OpenRecoversThePlaintext) {
  const KnownAnswer& v = GetParam();
  HopAead aead = MakeAead(v.algorithm, HopRole::kResponder, Hex(v.key));
  std::vector<uint8_t> data = Hex(v.ciphertext);
  ASSERT_EQ(aead.OpenDetached(Hex(v.nonce), Hex(v.aad), absl::MakeSpan(data), Hex(v.tag)),
            AeadStatus::kOk);
  EXPECT_EQ(data, Hex(v.plaintext));
}

TEST_P(KnownAnswerTest, OpenRejectsAFlippedTagBit) {
  const KnownAnswer& v = GetParam();
  HopAead aead = MakeAead(v.algorithm, HopRole::kResponder, Hex(v.key));
  std::vector<uint8_t> data = Hex(v.ciphertext);
  std::vector<uint8_t> tag = Hex(v.tag);
  tag[kTagSize - 1] ^= 0x01;
  EXPECT_EQ(aead.OpenDetached(Hex(v.nonce), Hex(v.aad), absl::MakeSpan(data), tag),
            AeadStatus::kBadTag);
  EXPECT_EQ(data, std::vector<uint8_t>(data.size(), 0)) << "unauthenticated output must be wiped";
}

INSTANTIATE_TEST_SUITE_P(PublishedVectors, KnownAnswerTest, ::testing::ValuesIn(KnownAnswers()),
                         [](const ::testing::TestParamInfo<KnownAnswer>& info) {
                           return info.param.name;
                         });

// ---------------------------------------------------------------------------
// Framed Seal/Open, for both algorithms.

class FrameAeadTest : public ::testing::TestWithParam<AeadAlgorithm> {
 protected:
  FrameAeadTest()
      : initiator_(MakeAead(GetParam(), HopRole::kInitiator, TestKey())),
        responder_(MakeAead(GetParam(), HopRole::kResponder, TestKey())) {}

  // A frame from the initiator, sealed.
  std::vector<uint8_t> SealedFrame(absl::string_view payload, uint64_t sequence = 1) {
    return FrameBuilder()
        .SessionId(0xABCDEF)
        .FlowId(42)
        .Counter(MakeCounter(Direction::kInitiatorToResponder, sequence))
        .Payload(payload)
        .BuildSealed(initiator_);
  }

  HopAead initiator_;
  HopAead responder_;
};

// OpenSSL's one-shot EVP interface, driven the way the frame format says:
// nonce = flow_id || counter big-endian, AAD = the 28 header bytes.
std::vector<uint8_t> OneShotSeal(AeadAlgorithm algorithm, const std::vector<uint8_t>& key,
                                 const std::vector<uint8_t>& header, uint32_t flow_id,
                                 uint64_t counter, const std::vector<uint8_t>& plaintext) {
  uint8_t nonce[12];
  for (int i = 0; i < 4; ++i) nonce[i] = static_cast<uint8_t>(flow_id >> (24 - 8 * i));
  for (int i = 0; i < 8; ++i) nonce[4 + i] = static_cast<uint8_t>(counter >> (56 - 8 * i));
  const EVP_CIPHER* cipher =
      algorithm == AeadAlgorithm::kAes256Gcm ? EVP_aes_256_gcm() : EVP_chacha20_poly1305();
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  std::vector<uint8_t> out(plaintext.size() + kTagSize);
  int len = 0;
  EXPECT_EQ(EVP_EncryptInit_ex(ctx, cipher, nullptr, key.data(), nonce), 1);
  EXPECT_EQ(EVP_EncryptUpdate(ctx, nullptr, &len, header.data(), header.size()), 1);
  EXPECT_EQ(EVP_EncryptUpdate(ctx, out.data(), &len, plaintext.data(), plaintext.size()), 1);
  EXPECT_EQ(EVP_EncryptFinal_ex(ctx, out.data() + len, &len), 1);
  EXPECT_EQ(
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, kTagSize, out.data() + plaintext.size()), 1);
  EVP_CIPHER_CTX_free(ctx);
  return out;
}

TEST_P(FrameAeadTest, SealMatchesOpenSslOneShotWithHeaderAsAadAndNonceFromHeader) {
  for (size_t payload_size :
       {size_t{0}, size_t{1}, size_t{15}, size_t{64}, size_t{1400}, kMaxPayloadSize}) {
    std::vector<uint8_t> plaintext(payload_size);
    for (size_t i = 0; i < payload_size; ++i) plaintext[i] = static_cast<uint8_t>(i * 7 + 3);
    const uint32_t flow_id = 0xC0FFEE01;
    const uint64_t counter = MakeCounter(Direction::kInitiatorToResponder, 0x0102030405060708);
    FrameBuilder builder;
    builder.FlowId(flow_id).Counter(counter).SessionId(99).ServiceId(5).Payload(plaintext);
    const std::vector<uint8_t> plain_frame = builder.Build();
    const std::vector<uint8_t> header(plain_frame.begin(), plain_frame.begin() + kHeaderSize);

    const std::vector<uint8_t> sealed = builder.BuildSealed(initiator_);
    const std::vector<uint8_t> expected =
        OneShotSeal(GetParam(), TestKey(), header, flow_id, counter, plaintext);
    ASSERT_EQ(sealed.size(), FrameSize(payload_size));
    EXPECT_EQ(std::vector<uint8_t>(sealed.begin(), sealed.begin() + kHeaderSize), header)
        << "Seal must not change the header";
    EXPECT_EQ(std::vector<uint8_t>(sealed.begin() + kHeaderSize, sealed.end()), expected)
        << "payload size " << payload_size;
  }
}

TEST_P(FrameAeadTest, OpenRecoversWhatTheOtherSideSealed) {
  std::vector<uint8_t> frame = SealedFrame("request bytes");
  ASSERT_EQ(responder_.Open(absl::MakeSpan(frame)), AeadStatus::kOk);
  FrameResult<FrameView> view = DecodeFrame(frame);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(std::string(view->payload.begin(), view->payload.end()), "request bytes");

  std::vector<uint8_t> reply = FrameBuilder()
                                   .FlowId(42)
                                   .Counter(MakeCounter(Direction::kResponderToInitiator, 1))
                                   .Payload("reply bytes")
                                   .BuildSealed(responder_);
  ASSERT_EQ(initiator_.Open(absl::MakeSpan(reply)), AeadStatus::kOk);
  EXPECT_EQ(std::string(reply.begin() + kHeaderSize, reply.end() - kTagSize), "reply bytes");
}

TEST_P(FrameAeadTest, EmptyPayloadFramesSealAndOpen) {
  std::vector<uint8_t> frame = FrameBuilder()
                                   .Type(FrameType::kKeepalive)
                                   .Counter(MakeCounter(Direction::kInitiatorToResponder, 9))
                                   .BuildSealed(initiator_);
  ASSERT_EQ(frame.size(), kMinFrameSize);
  EXPECT_EQ(responder_.Open(absl::MakeSpan(frame)), AeadStatus::kOk);
}

TEST_P(FrameAeadTest, CiphertextDiffersFromPlaintextAndAcrossCounters) {
  const std::string payload(64, 'x');
  std::vector<uint8_t> first = SealedFrame(payload, 1);
  std::vector<uint8_t> second = SealedFrame(payload, 2);
  const std::vector<uint8_t> plain(payload.begin(), payload.end());
  EXPECT_NE(std::vector<uint8_t>(first.begin() + kHeaderSize, first.end() - kTagSize), plain);
  EXPECT_NE(std::vector<uint8_t>(first.begin() + kHeaderSize, first.end()),
            std::vector<uint8_t>(second.begin() + kHeaderSize, second.end()));
}

TEST_P(FrameAeadTest, EveryFlippedBitFailsOpen) {
  const std::vector<uint8_t> sealed = SealedFrame("tamper with me");
  const size_t counter_top_bit = kCounterOffset * 8;  // MSB of the counter's first byte
  for (size_t bit = 0; bit < sealed.size() * 8; ++bit) {
    std::vector<uint8_t> frame = sealed;
    frame[bit / 8] ^= static_cast<uint8_t>(0x80 >> (bit % 8));
    // Flipping the direction bit is caught before the crypto; every other bit by the tag.
    const AeadStatus want =
        bit == counter_top_bit ? AeadStatus::kWrongDirection : AeadStatus::kBadTag;
    ASSERT_EQ(responder_.Open(absl::MakeSpan(frame)), want)
        << "bit " << bit << " of " << sealed.size() * 8;
  }
  std::vector<uint8_t> untouched = sealed;
  EXPECT_EQ(responder_.Open(absl::MakeSpan(untouched)), AeadStatus::kOk)
      << "the object must keep working after failures";
}

TEST_P(FrameAeadTest, FailedOpenWipesThePayload) {
  std::vector<uint8_t> frame = SealedFrame("secret-ish");
  frame.back() ^= 0x01;
  ASSERT_EQ(responder_.Open(absl::MakeSpan(frame)), AeadStatus::kBadTag);
  EXPECT_EQ(std::vector<uint8_t>(frame.begin() + kHeaderSize, frame.end() - kTagSize),
            std::vector<uint8_t>(10, 0));
}

TEST_P(FrameAeadTest, WrongKeyFailsOpen) {
  HopAead other_key = MakeAead(GetParam(), HopRole::kResponder, TestKey(100));
  std::vector<uint8_t> frame = SealedFrame("payload");
  EXPECT_EQ(other_key.Open(absl::MakeSpan(frame)), AeadStatus::kBadTag);
}

TEST_P(FrameAeadTest, OtherAlgorithmFailsOpen) {
  const AeadAlgorithm other = GetParam() == AeadAlgorithm::kAes256Gcm
                                  ? AeadAlgorithm::kChaCha20Poly1305
                                  : AeadAlgorithm::kAes256Gcm;
  HopAead other_algorithm = MakeAead(other, HopRole::kResponder, TestKey());
  std::vector<uint8_t> frame = SealedFrame("payload");
  EXPECT_EQ(other_algorithm.Open(absl::MakeSpan(frame)), AeadStatus::kBadTag);
}

TEST_P(FrameAeadTest, TruncationAtEveryLengthFailsOpen) {
  const std::vector<uint8_t> sealed = SealedFrame(std::string(64, 'p'));
  for (size_t length = 0; length < sealed.size(); ++length) {
    std::vector<uint8_t> frame(sealed.begin(), sealed.begin() + length);
    const AeadStatus want = length < kMinFrameSize ? AeadStatus::kTooShort : AeadStatus::kBadTag;
    ASSERT_EQ(responder_.Open(absl::MakeSpan(frame)), want) << "length " << length;
  }
}

TEST_P(FrameAeadTest, OversizeFrameIsTooLong) {
  std::vector<uint8_t> frame = FrameBuilder()
                                   .Counter(MakeCounter(Direction::kInitiatorToResponder, 1))
                                   .PayloadOfSize(kMaxPayloadSize + 1)
                                   .Build();
  EXPECT_EQ(responder_.Open(absl::MakeSpan(frame)), AeadStatus::kTooLong);
  EXPECT_EQ(initiator_.Seal(absl::MakeSpan(frame), kMaxPayloadSize + 1), AeadStatus::kTooLong);
}

TEST_P(FrameAeadTest, SealRefusesABufferTooSmallAndLeavesItUntouched) {
  const std::vector<uint8_t> frame = FrameBuilder()
                                         .Counter(MakeCounter(Direction::kInitiatorToResponder, 1))
                                         .Payload("0123456789")
                                         .Build();
  for (size_t size = 0; size < frame.size(); ++size) {
    std::vector<uint8_t> buffer(frame.begin(), frame.begin() + size);
    ASSERT_EQ(initiator_.Seal(absl::MakeSpan(buffer), 10), AeadStatus::kTooShort) << size;
    EXPECT_EQ(buffer, std::vector<uint8_t>(frame.begin(), frame.begin() + size));
  }
}

TEST_P(FrameAeadTest, SealLeavesBytesPastTheFrameUntouched) {
  std::vector<uint8_t> buffer = FrameBuilder()
                                    .Counter(MakeCounter(Direction::kInitiatorToResponder, 1))
                                    .Payload("abc")
                                    .Build();
  buffer.resize(buffer.size() + 8, 0x5A);
  ASSERT_EQ(initiator_.Seal(absl::MakeSpan(buffer), 3), AeadStatus::kOk);
  EXPECT_EQ(std::vector<uint8_t>(buffer.end() - 8, buffer.end()), std::vector<uint8_t>(8, 0x5A));
  EXPECT_EQ(responder_.Open(absl::MakeSpan(buffer.data(), FrameSize(3))), AeadStatus::kOk);
}

TEST_P(FrameAeadTest, SealRefusesTheOtherSidesDirection) {
  std::vector<uint8_t> frame = FrameBuilder()
                                   .Counter(MakeCounter(Direction::kResponderToInitiator, 1))
                                   .Payload("abc")
                                   .Build();
  const std::vector<uint8_t> before = frame;
  EXPECT_EQ(initiator_.Seal(absl::MakeSpan(frame), 3), AeadStatus::kWrongDirection);
  EXPECT_EQ(frame, before);
}

TEST_P(FrameAeadTest, ReflectedFrameIsRejectedAsWrongDirection) {
  // An attacker bounces the initiator's own frame back at it: same key, valid
  // tag, but the initiator only accepts responder-to-initiator counters.
  std::vector<uint8_t> frame = SealedFrame("mine");
  const std::vector<uint8_t> before = frame;
  EXPECT_EQ(initiator_.Open(absl::MakeSpan(frame)), AeadStatus::kWrongDirection);
  EXPECT_EQ(frame, before) << "a direction reject must happen before any crypto";
}

TEST_P(FrameAeadTest, FrameWithForgedDirectionBitFailsEitherWay) {
  // Setting the direction bit to get past the check changes the header (the
  // AAD) and the nonce, so the tag no longer verifies.
  std::vector<uint8_t> frame = SealedFrame("mine");
  frame[kCounterOffset] ^= 0x80;
  EXPECT_EQ(initiator_.Open(absl::MakeSpan(frame)), AeadStatus::kBadTag);
}

TEST_P(FrameAeadTest, MovedObjectKeepsItsKeyAndRole) {
  HopAead moved = std::move(responder_);
  EXPECT_EQ(moved.algorithm(), GetParam());
  EXPECT_EQ(moved.role(), HopRole::kResponder);
  std::vector<uint8_t> frame = SealedFrame("after move");
  EXPECT_EQ(moved.Open(absl::MakeSpan(frame)), AeadStatus::kOk);
}

INSTANTIATE_TEST_SUITE_P(BothAlgorithms, FrameAeadTest,
                         ::testing::Values(AeadAlgorithm::kAes256Gcm,
                                           AeadAlgorithm::kChaCha20Poly1305),
                         [](const ::testing::TestParamInfo<AeadAlgorithm>& info) {
                           return std::string(AeadAlgorithmName(info.param));
                         });

// A frame sealed by this code, checked against bytes computed independently
// (Python's `cryptography` package) from the wire layout in frame.h.
TEST(FrameAeadGoldenTest, SealedFrameMatchesIndependentlyComputedBytes) {
  const std::string kHeader = "2f01010101020304050607080a0b0c0d112233440000000000000005";
  struct Golden {
    AeadAlgorithm algorithm;
    std::string ciphertext_and_tag;
  };
  const Golden kGoldens[] = {
      {AeadAlgorithm::kAes256Gcm, "0f4e728a3c8cfdf72266dd2692ee0d5efb0b8b1cc077541cd29d83"},
      {AeadAlgorithm::kChaCha20Poly1305, "81561e3a0ccb2d2b62ba1909195933b5403880ff88d8eaa6bb1028"},
  };
  for (const Golden& golden : kGoldens) {
    HopAead aead = MakeAead(golden.algorithm, HopRole::kInitiator, TestKey());
    std::vector<uint8_t> frame = FrameBuilder()
                                     .Flags(kFlagOpen)
                                     .SessionId(0x0102030405060708)
                                     .ServiceId(0x0A0B0C0D)
                                     .FlowId(0x11223344)
                                     .Counter(5)
                                     .Payload("hello ferry")
                                     .BuildSealed(aead);
    EXPECT_EQ(absl::BytesToHexString(
                  absl::string_view(reinterpret_cast<const char*>(frame.data()), frame.size())),
              kHeader + golden.ciphertext_and_tag)
        << AeadAlgorithmName(golden.algorithm);
  }
}

// ---------------------------------------------------------------------------
// Creation, names, drop reasons.

TEST(HopAeadCreateTest, RejectsKeysThatAreNot32Bytes) {
  for (size_t size : {0, 1, 16, 24, 31, 33, 64}) {
    std::vector<uint8_t> key(size, 1);
    absl::StatusOr<HopAead> aead =
        HopAead::Create(AeadAlgorithm::kAes256Gcm, key, HopRole::kInitiator);
    ASSERT_FALSE(aead.ok()) << size;
    EXPECT_EQ(aead.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(aead.status().message().find("32 bytes"), absl::string_view::npos);
  }
}

TEST(HopAeadCreateTest, RejectsUnknownAlgorithm) {
  absl::StatusOr<HopAead> aead =
      HopAead::Create(static_cast<AeadAlgorithm>(7), TestKey(), HopRole::kInitiator);
  ASSERT_FALSE(aead.ok());
  EXPECT_EQ(aead.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(AeadNamesTest, StableLabels) {
  EXPECT_EQ(AeadAlgorithmName(AeadAlgorithm::kAes256Gcm), "aes_256_gcm");
  EXPECT_EQ(AeadAlgorithmName(AeadAlgorithm::kChaCha20Poly1305), "chacha20_poly1305");
  EXPECT_EQ(AeadAlgorithmName(static_cast<AeadAlgorithm>(9)), "unknown");
  EXPECT_EQ(AeadStatusName(AeadStatus::kOk), "ok");
  EXPECT_EQ(AeadStatusName(AeadStatus::kTooShort), "too_short");
  EXPECT_EQ(AeadStatusName(AeadStatus::kTooLong), "too_long");
  EXPECT_EQ(AeadStatusName(AeadStatus::kWrongDirection), "wrong_direction");
  EXPECT_EQ(AeadStatusName(AeadStatus::kBadTag), "bad_tag");
  EXPECT_EQ(AeadStatusName(AeadStatus::kCryptoError), "crypto_error");
  EXPECT_EQ(AeadStatusName(static_cast<AeadStatus>(99)), "unknown");
}

TEST(AeadDropReasonTest, FailuresMapToTheirDropReasons) {
  EXPECT_EQ(ToDropReason(AeadStatus::kTooShort), DropReason::kTooShort);
  EXPECT_EQ(ToDropReason(AeadStatus::kTooLong), DropReason::kTooLong);
  EXPECT_EQ(ToDropReason(AeadStatus::kWrongDirection), DropReason::kWrongDirection);
  EXPECT_EQ(ToDropReason(AeadStatus::kBadTag), DropReason::kBadTag);
  EXPECT_EQ(ToDropReason(AeadStatus::kCryptoError), DropReason::kCryptoError);
}

TEST(AeadDropReasonDeathTest, OkIsNotADrop) {
  EXPECT_DEATH((void)ToDropReason(AeadStatus::kOk), "not a failure");
}

}  // namespace
}  // namespace ferry::dataplane
