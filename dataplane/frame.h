// The 0x2F frame, version 1: the unit of every data-plane datagram and of every
// record on a stream transport.
//
// Wire layout (big-endian), kHeaderSize + payload + kTagSize bytes in all:
//
//   offset  size  field
//        0     1  magic 0x2F
//        1     1  version 1
//        2     1  type (FrameType)
//        3     1  flags (kFlagOpen | kFlagFin)
//        4     8  session_id   the hop's session: picks the key and the owner
//       12     4  service_id
//       16     4  flow_id      also the worker steering key
//       20     8  counter      AEAD nonce part; replay window at the receiver
//       28     n  payload      ciphertext on the wire
//     28+n    16  tag          AEAD tag; the 28 header bytes are the associated data
//
// Decoding is bounds-checked and allocation-free: it validates the header and
// returns spans into the caller's buffer. It never authenticates; that is
// HopAead::Open's job (dataplane/aead.h). Nothing here throws or allocates.

#ifndef FERRY_DATAPLANE_FRAME_H_
#define FERRY_DATAPLANE_FRAME_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace ferry::dataplane {

inline constexpr uint8_t kFrameMagic = 0x2F;
inline constexpr uint8_t kFrameVersion = 1;
inline constexpr size_t kHeaderSize = 28;
inline constexpr size_t kTagSize = 16;
// Largest frame, header and tag included (one UDP datagram's worth).
inline constexpr size_t kMaxFrameSize = 65535;
// Smallest frame: a header and a tag around an empty payload.
inline constexpr size_t kMinFrameSize = kHeaderSize + kTagSize;
inline constexpr size_t kMaxPayloadSize = kMaxFrameSize - kMinFrameSize;

// Byte offsets of the header fields. The nonce (flow_id || counter) is the
// 12 bytes at kFlowIdOffset.
inline constexpr size_t kMagicOffset = 0;
inline constexpr size_t kVersionOffset = 1;
inline constexpr size_t kTypeOffset = 2;
inline constexpr size_t kFlagsOffset = 3;
inline constexpr size_t kSessionIdOffset = 4;
inline constexpr size_t kServiceIdOffset = 12;
inline constexpr size_t kFlowIdOffset = 16;
inline constexpr size_t kCounterOffset = 20;

// Total size of a frame carrying `payload_size` payload bytes.
constexpr size_t FrameSize(size_t payload_size) { return kHeaderSize + payload_size + kTagSize; }

enum class FrameType : uint8_t {
  kData = 1,       // payload bytes of a flow
  kClose = 2,      // the flow is gone (reset), both directions
  kKeepalive = 3,  // keeps a session and its NAT bindings alive; no flow
  kProbe = 4,      // path probe (direct-path checks, RTT)
  kProbeAck = 5,   // answer to a probe
  kWindow = 6,     // stream transports: the receiver grants the sender more bytes
                   // on the flow (payload: 4-byte big-endian increment)
};

// Stable lower-case name ("data", "close", "keepalive", "probe", "probe_ack",
// "window") for
// logs; "unknown" for a value outside the enum.
absl::string_view FrameTypeName(FrameType type);

// True when `raw` is one of the FrameType values.
bool IsValidFrameType(uint8_t raw);

// First frame of a flow: the receiver may create flow state for it.
inline constexpr uint8_t kFlagOpen = 0x01;
// Half-close: the sender sends no more on this flow.
inline constexpr uint8_t kFlagFin = 0x02;
// Any other bit set makes the frame malformed.
inline constexpr uint8_t kKnownFlags = kFlagOpen | kFlagFin;

// Why a frame could not be decoded or encoded. Values are stable; each has a
// metric label from FrameErrorName().
enum class FrameError : uint8_t {
  kTooShort = 0,        // fewer than kMinFrameSize bytes
  kTooLong = 1,         // more than kMaxFrameSize bytes (or a payload that would make it so)
  kBadMagic = 2,        // first byte is not 0x2F
  kBadVersion = 3,      // version byte is not 1
  kBadType = 4,         // type is not a FrameType
  kBadFlags = 5,        // a flag bit outside kKnownFlags is set
  kBufferTooSmall = 6,  // encoding: the output buffer cannot hold the frame
};
inline constexpr size_t kFrameErrorCount = 7;

// Stable snake_case label for metrics and logs: "too_short", "too_long",
// "bad_magic", "bad_version", "bad_type", "bad_flags", "buffer_too_small";
// "unknown" for a value outside the enum.
absl::string_view FrameErrorName(FrameError error);

// The decoded header fields.
struct FrameHeader {
  FrameType type = FrameType::kData;
  uint8_t flags = 0;
  uint64_t session_id = 0;
  uint32_t service_id = 0;
  uint32_t flow_id = 0;
  uint64_t counter = 0;

  bool has_open() const { return (flags & kFlagOpen) != 0; }
  bool has_fin() const { return (flags & kFlagFin) != 0; }

  friend bool operator==(const FrameHeader& a, const FrameHeader& b) {
    return a.type == b.type && a.flags == b.flags && a.session_id == b.session_id &&
           a.service_id == b.service_id && a.flow_id == b.flow_id && a.counter == b.counter;
  }
  friend bool operator!=(const FrameHeader& a, const FrameHeader& b) { return !(a == b); }
};

// A decoded frame. The spans point into the buffer given to DecodeFrame and are
// valid only as long as it is; the view owns nothing.
struct FrameView {
  FrameHeader header;
  absl::Span<const uint8_t> header_bytes;  // the kHeaderSize header bytes (AEAD associated data)
  absl::Span<const uint8_t> payload;       // ciphertext until opened; may be empty
  absl::Span<const uint8_t> tag;           // kTagSize bytes

  size_t size() const { return header_bytes.size() + payload.size() + tag.size(); }
};

namespace frame_internal {
// Aborts the process with `what`; called on misuse of FrameResult.
[[noreturn]] void DieOnBadResultAccess(const char* what);
}  // namespace frame_internal

// Either a T or a FrameError; no allocation. Reading value() of an error (or
// error() of a value) is a bug in the caller and aborts.
template <typename T>
class [[nodiscard]] FrameResult {
 public:
  FrameResult(T value) : value_(value), error_(FrameError::kTooShort), ok_(true) {}  // NOLINT
  FrameResult(FrameError error) : value_(), error_(error), ok_(false) {}             // NOLINT

  bool ok() const { return ok_; }

  const T& value() const {
    if (!ok_) frame_internal::DieOnBadResultAccess("FrameResult::value() on an error");
    return value_;
  }
  FrameError error() const {
    if (ok_) frame_internal::DieOnBadResultAccess("FrameResult::error() on a value");
    return error_;
  }

  const T& operator*() const { return value(); }
  const T* operator->() const { return &value(); }

 private:
  T value_;
  FrameError error_;
  bool ok_;
};

// Decodes and validates the frame in `frame`, which must be exactly one frame
// (a datagram, or one record of a stream transport). Checks, in this order:
// length (kTooShort below kMinFrameSize, kTooLong above kMaxFrameSize), magic,
// version, type, flags. Does not authenticate: the payload is still ciphertext
// and every field is attacker-controlled until HopAead::Open succeeds.
// Allocation-free; any thread; never reads outside `frame`.
FrameResult<FrameView> DecodeFrame(absl::Span<const uint8_t> frame);

// Writes `header` as the kHeaderSize bytes at out[0, kHeaderSize) and returns
// kHeaderSize. Refuses to write what DecodeFrame would reject: kBadType for a
// type outside FrameType, kBadFlags for an unknown flag bit; kBufferTooSmall
// when out.size() < kHeaderSize. On error `out` is untouched.
FrameResult<size_t> EncodeHeader(const FrameHeader& header, absl::Span<uint8_t> out);

// Lays out a frame of `payload_size` payload bytes in `out`: writes the header
// and returns FrameSize(payload_size), the number of bytes of `out` the frame
// uses. The payload is whatever the caller put (or will put) at
// out[kHeaderSize, kHeaderSize + payload_size): nothing is copied. The tag
// bytes after it are left for HopAead::Seal. Errors: kTooLong when
// payload_size > kMaxPayloadSize, kBufferTooSmall when `out` is shorter than
// the frame, and EncodeHeader's. On error `out` is untouched.
FrameResult<size_t> EncodeFrame(const FrameHeader& header, size_t payload_size,
                                absl::Span<uint8_t> out);

}  // namespace ferry::dataplane

#endif  // FERRY_DATAPLANE_FRAME_H_
