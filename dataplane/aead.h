// Per-hop authenticated encryption of 0x2F frames (OpenSSL EVP).
//
// Each hop (agent<->relay, relay<->connector, agent<->connector direct) has its
// own 32-byte key from the control plane. A frame is sealed with AES-256-GCM
// (the default) or ChaCha20-Poly1305: the 28 header bytes are the associated
// data, the payload is encrypted in place, and the 16-byte tag follows it.
//
// Nonce (12 bytes) = flow_id (4 bytes BE) || counter (8 bytes BE), which is
// exactly header bytes [16, 28), so a frame carries its own nonce.
//
// Nonce uniqueness rule. AEAD security is lost if a (key, nonce) pair is ever
// used for two different frames. One hop key serves both directions of the hop,
// so the counter's top bit is the direction:
//   0: initiator -> responder (sent by the side nearer the agent),
//   1: responder -> initiator.
// For a given (flow_id, direction) exactly one party sends at a time, and it
// takes each counter from a per-flow sequence that only ever increases (the
// low 63 bits; MakeCounter()). A flow_id is never reused under the same key
// with a restarted sequence: a new flow gets a new flow_id, and a hop whose
// sequences could repeat gets a new key. HopAead enforces the direction half of
// the rule: Seal refuses a counter whose direction bit is not its own, Open
// refuses one that is not the peer's (kWrongDirection, before any crypto).
// The increasing-sequence half belongs to the flow state that picks counters;
// the receiver's ReplayWindow (dataplane/replay_window.h) rejects repeats.

#ifndef FERRY_DATAPLANE_AEAD_H_
#define FERRY_DATAPLANE_AEAD_H_

#include <openssl/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "dataplane/drop_reason.h"
#include "dataplane/frame.h"

namespace ferry::dataplane {

enum class AeadAlgorithm : uint8_t {
  kAes256Gcm = 0,         // default; fastest where the CPU has AES-NI/PCLMUL
  kChaCha20Poly1305 = 1,  // for CPUs without AES instructions
};

// "aes_256_gcm" or "chacha20_poly1305"; "unknown" outside the enum.
absl::string_view AeadAlgorithmName(AeadAlgorithm algorithm);

inline constexpr size_t kAeadKeySize = 32;
inline constexpr size_t kNonceSize = 12;
static_assert(kFlowIdOffset + kNonceSize == kHeaderSize, "the nonce is the header's tail");

// Which way a frame travels on its hop; the counter's top bit.
enum class Direction : uint8_t {
  kInitiatorToResponder = 0,  // from the side nearer the agent
  kResponderToInitiator = 1,
};

// This party's end of a hop. The initiator is the side nearer the agent (the
// agent on agent<->relay and agent<->connector, the relay on relay<->connector).
enum class HopRole : uint8_t { kInitiator = 0, kResponder = 1 };

inline constexpr uint64_t kDirectionBit = uint64_t{1} << 63;
// Largest per-direction sequence; a sender that reaches it must stop (drop
// with kCounterExhausted) and get a new key.
inline constexpr uint64_t kMaxSequence = kDirectionBit - 1;

constexpr Direction SendDirection(HopRole role) {
  return role == HopRole::kInitiator ? Direction::kInitiatorToResponder
                                     : Direction::kResponderToInitiator;
}
constexpr Direction ReceiveDirection(HopRole role) {
  return role == HopRole::kInitiator ? Direction::kResponderToInitiator
                                     : Direction::kInitiatorToResponder;
}
constexpr Direction CounterDirection(uint64_t counter) {
  return (counter & kDirectionBit) != 0 ? Direction::kResponderToInitiator
                                        : Direction::kInitiatorToResponder;
}
// The low 63 bits: the sender's per-flow sequence.
constexpr uint64_t CounterSequence(uint64_t counter) { return counter & kMaxSequence; }
// The wire counter for `sequence` (which must be <= kMaxSequence; higher bits
// are discarded) sent in `direction`.
constexpr uint64_t MakeCounter(Direction direction, uint64_t sequence) {
  return (direction == Direction::kResponderToInitiator ? kDirectionBit : 0) |
         (sequence & kMaxSequence);
}

// Outcome of Seal and Open.
enum class AeadStatus : uint8_t {
  kOk = 0,
  kTooShort = 1,        // Seal: buffer cannot hold header + payload + tag; Open: < kMinFrameSize
  kTooLong = 2,         // larger than kMaxFrameSize
  kWrongDirection = 3,  // counter's direction bit is not the one this role sends / receives
  kBadTag = 4,          // Open: authentication failed (wrong key, any bit of header/payload/tag)
  kCryptoError = 5,     // OpenSSL failed for another reason (not the peer's doing)
};

// "ok", "too_short", "too_long", "wrong_direction", "bad_tag", "crypto_error";
// "unknown" outside the enum.
absl::string_view AeadStatusName(AeadStatus status);

// The drop reason for a failed Seal or Open. `status` must not be kOk (a
// caller bug: aborts).
DropReason ToDropReason(AeadStatus status);

// The AEAD state for one hop key, held by one party in one role.
//
// Both EVP cipher contexts (one sealing, one opening) are set up with the key
// once in Create(); Seal and Open only set the nonce, so they neither allocate
// nor take a lock. Not thread-safe: each worker owns its own HopAead for each
// session key, and calls on one object must not overlap. Movable, not copyable.
// The key bytes are not retained; OpenSSL cleanses its key schedule on
// destruction.
class HopAead {
 public:
  // Errors: kInvalidArgument if key.size() != kAeadKeySize or `algorithm` is
  // not an AeadAlgorithm; kInternal if OpenSSL cannot set the cipher up.
  static absl::StatusOr<HopAead> Create(AeadAlgorithm algorithm, absl::Span<const uint8_t> key,
                                        HopRole role);

  HopAead(HopAead&&) noexcept;
  HopAead& operator=(HopAead&&) noexcept;
  ~HopAead();

  AeadAlgorithm algorithm() const { return algorithm_; }
  HopRole role() const { return role_; }

  // Seals the frame laid out at the start of `frame` (EncodeFrame's layout):
  // header in [0, kHeaderSize), `payload_size` plaintext bytes after it. The
  // payload is encrypted in place and the tag is written at
  // [kHeaderSize + payload_size, FrameSize(payload_size)). Bytes of `frame`
  // past that are untouched. The header is not validated (EncodeFrame does),
  // only read. Returns kOk; kTooLong if payload_size > kMaxPayloadSize;
  // kTooShort if frame.size() < FrameSize(payload_size); kWrongDirection if the
  // header's counter is not in SendDirection(role()); kCryptoError. On any
  // error other than kCryptoError `frame` is untouched.
  AeadStatus Seal(absl::Span<uint8_t> frame, size_t payload_size);

  // Authenticates and decrypts `frame`, exactly one whole frame (as given to
  // DecodeFrame). On kOk the plaintext payload is at
  // [kHeaderSize, frame.size() - kTagSize). Returns kTooShort / kTooLong
  // for a size outside [kMinFrameSize, kMaxFrameSize]; kWrongDirection if the
  // header's counter is not in ReceiveDirection(role()) (checked before any
  // crypto, frame untouched); kBadTag if authentication fails (wrong key, or any
  // changed bit of header, payload or tag); kCryptoError. On kBadTag and
  // kCryptoError the payload bytes are zeroed, so unauthenticated plaintext
  // is never left behind. Does not check the replay window; do that with the
  // counter before Open (Check) and after it (Update).
  AeadStatus Open(absl::Span<uint8_t> frame);

  // The raw AEAD under this key, with an explicit nonce and associated data
  // and no direction check: Seal/Open are built on these, and known-answer
  // tests drive them with published vectors. `nonce` must be kNonceSize bytes
  // and `tag` kTagSize bytes (else a caller bug: aborts). `data` is encrypted
  // (decrypted) in place. Returns kOk, kTooLong if data or aad exceed INT_MAX
  // bytes, kBadTag (open only; `data` is then zeroed), kCryptoError.
  AeadStatus SealDetached(absl::Span<const uint8_t> nonce, absl::Span<const uint8_t> aad,
                          absl::Span<uint8_t> data, absl::Span<uint8_t> tag);
  AeadStatus OpenDetached(absl::Span<const uint8_t> nonce, absl::Span<const uint8_t> aad,
                          absl::Span<uint8_t> data, absl::Span<const uint8_t> tag);

 private:
  struct CipherCtxDeleter {
    void operator()(EVP_CIPHER_CTX* ctx) const;
  };
  using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter>;

  HopAead(AeadAlgorithm algorithm, HopRole role, CipherCtxPtr seal_ctx, CipherCtxPtr open_ctx);

  AeadAlgorithm algorithm_;
  HopRole role_;
  CipherCtxPtr seal_ctx_;
  CipherCtxPtr open_ctx_;
};

}  // namespace ferry::dataplane

#endif  // FERRY_DATAPLANE_AEAD_H_
