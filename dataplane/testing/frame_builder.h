// A fluent builder of 0x2F frames for tests, in the style of Katran's
// PacketBuilder: valid by default, and able to write any field (magic,
// version, type, flags) to a value the codec must reject, or to cut the frame
// short, so that malformed-input tests read as a table of one-line cases.
//
//   std::vector<uint8_t> frame =
//       FrameBuilder().Type(FrameType::kData).Flags(kFlagOpen).FlowId(7).Payload("hi").Build();
//   std::vector<uint8_t> bad = FrameBuilder().Version(2).Build();
//   std::vector<uint8_t> sealed = FrameBuilder().Counter(MakeCounter(dir, 1)).BuildSealed(aead);
//
// It writes the wire bytes itself rather than through EncodeFrame, so that it
// can produce what EncodeFrame refuses to. Test-only; not thread-safe.

#ifndef FERRY_DATAPLANE_TESTING_FRAME_BUILDER_H_
#define FERRY_DATAPLANE_TESTING_FRAME_BUILDER_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "dataplane/aead.h"
#include "dataplane/frame.h"

namespace ferry::dataplane::test {

class FrameBuilder {
 public:
  // Defaults: magic 0x2F, version 1, DATA, no flags, session_id 1,
  // service_id 1, flow_id 1, counter 0, empty payload, all-zero tag.
  FrameBuilder() = default;

  FrameBuilder& Magic(uint8_t magic);
  FrameBuilder& Version(uint8_t version);
  FrameBuilder& Type(FrameType type);
  // Any byte, including ones that are not a FrameType.
  FrameBuilder& RawType(uint8_t type);
  // Any byte, including unknown flag bits.
  FrameBuilder& Flags(uint8_t flags);
  FrameBuilder& SessionId(uint64_t session_id);
  FrameBuilder& ServiceId(uint32_t service_id);
  FrameBuilder& FlowId(uint32_t flow_id);
  FrameBuilder& Counter(uint64_t counter);
  // Sets every header field from `header` (magic and version stay as set).
  FrameBuilder& Header(const FrameHeader& header);
  FrameBuilder& Payload(absl::Span<const uint8_t> payload);
  FrameBuilder& Payload(absl::string_view payload);
  // `size` payload bytes, each `fill`; sizes past kMaxPayloadSize make oversize frames.
  FrameBuilder& PayloadOfSize(size_t size, uint8_t fill = 0xAB);
  FrameBuilder& Tag(const std::array<uint8_t, kTagSize>& tag);
  // Build() and BuildSealed() return only the first `size` bytes (no effect
  // when the frame is already that short).
  FrameBuilder& TruncateTo(size_t size);

  // The frame as set: header, payload (as plaintext), tag; then truncated.
  std::vector<uint8_t> Build() const;

  // The frame with its payload sealed by `aead` (which writes the tag; any
  // Tag() is overwritten), then truncated. Aborts if Seal fails, e.g. when the
  // counter's direction is not `aead`'s send direction: a broken test.
  std::vector<uint8_t> BuildSealed(HopAead& aead) const;

 private:
  std::vector<uint8_t> Assemble() const;
  std::vector<uint8_t> Truncated(std::vector<uint8_t> frame) const;

  uint8_t magic_ = kFrameMagic;
  uint8_t version_ = kFrameVersion;
  uint8_t type_ = static_cast<uint8_t>(FrameType::kData);
  uint8_t flags_ = 0;
  uint64_t session_id_ = 1;
  uint32_t service_id_ = 1;
  uint32_t flow_id_ = 1;
  uint64_t counter_ = 0;
  std::vector<uint8_t> payload_;
  std::array<uint8_t, kTagSize> tag_ = {};
  std::optional<size_t> truncate_to_;
};

}  // namespace ferry::dataplane::test

#endif  // FERRY_DATAPLANE_TESTING_FRAME_BUILDER_H_
