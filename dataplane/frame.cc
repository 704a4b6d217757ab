#include "dataplane/frame.h"

#include "dataplane/big_endian.h"
#include "glog/logging.h"

namespace ferry::dataplane {

namespace frame_internal {
void DieOnBadResultAccess(const char* what) { LOG(FATAL) << what; }
}  // namespace frame_internal

absl::string_view FrameTypeName(FrameType type) {
  switch (type) {
    case FrameType::kData:
      return "data";
    case FrameType::kClose:
      return "close";
    case FrameType::kKeepalive:
      return "keepalive";
    case FrameType::kProbe:
      return "probe";
    case FrameType::kProbeAck:
      return "probe_ack";
    case FrameType::kWindow:
      return "window";
  }
  return "unknown";
}

bool IsValidFrameType(uint8_t raw) {
  return raw >= static_cast<uint8_t>(FrameType::kData) &&
         raw <= static_cast<uint8_t>(FrameType::kWindow);
}

absl::string_view FrameErrorName(FrameError error) {
  switch (error) {
    case FrameError::kTooShort:
      return "too_short";
    case FrameError::kTooLong:
      return "too_long";
    case FrameError::kBadMagic:
      return "bad_magic";
    case FrameError::kBadVersion:
      return "bad_version";
    case FrameError::kBadType:
      return "bad_type";
    case FrameError::kBadFlags:
      return "bad_flags";
    case FrameError::kBufferTooSmall:
      return "buffer_too_small";
  }
  return "unknown";
}

FrameResult<FrameView> DecodeFrame(absl::Span<const uint8_t> frame) {
  if (frame.size() < kMinFrameSize) return FrameError::kTooShort;
  if (frame.size() > kMaxFrameSize) return FrameError::kTooLong;
  const uint8_t* p = frame.data();
  if (p[kMagicOffset] != kFrameMagic) return FrameError::kBadMagic;
  if (p[kVersionOffset] != kFrameVersion) return FrameError::kBadVersion;
  if (!IsValidFrameType(p[kTypeOffset])) return FrameError::kBadType;
  if ((p[kFlagsOffset] & ~kKnownFlags) != 0) return FrameError::kBadFlags;

  FrameView view;
  view.header.type = static_cast<FrameType>(p[kTypeOffset]);
  view.header.flags = p[kFlagsOffset];
  view.header.session_id = LoadBigEndian64(p + kSessionIdOffset);
  view.header.service_id = LoadBigEndian32(p + kServiceIdOffset);
  view.header.flow_id = LoadBigEndian32(p + kFlowIdOffset);
  view.header.counter = LoadBigEndian64(p + kCounterOffset);
  const size_t payload_size = frame.size() - kMinFrameSize;
  view.header_bytes = frame.subspan(0, kHeaderSize);
  view.payload = frame.subspan(kHeaderSize, payload_size);
  view.tag = frame.subspan(kHeaderSize + payload_size, kTagSize);
  return view;
}

FrameResult<size_t> EncodeHeader(const FrameHeader& header, absl::Span<uint8_t> out) {
  if (!IsValidFrameType(static_cast<uint8_t>(header.type))) return FrameError::kBadType;
  if ((header.flags & ~kKnownFlags) != 0) return FrameError::kBadFlags;
  if (out.size() < kHeaderSize) return FrameError::kBufferTooSmall;
  uint8_t* p = out.data();
  p[kMagicOffset] = kFrameMagic;
  p[kVersionOffset] = kFrameVersion;
  p[kTypeOffset] = static_cast<uint8_t>(header.type);
  p[kFlagsOffset] = header.flags;
  StoreBigEndian64(p + kSessionIdOffset, header.session_id);
  StoreBigEndian32(p + kServiceIdOffset, header.service_id);
  StoreBigEndian32(p + kFlowIdOffset, header.flow_id);
  StoreBigEndian64(p + kCounterOffset, header.counter);
  return kHeaderSize;
}

FrameResult<size_t> EncodeFrame(const FrameHeader& header, size_t payload_size,
                                absl::Span<uint8_t> out) {
  if (payload_size > kMaxPayloadSize) return FrameError::kTooLong;
  const size_t frame_size = FrameSize(payload_size);
  if (out.size() < frame_size) return FrameError::kBufferTooSmall;
  FrameResult<size_t> written = EncodeHeader(header, out);
  if (!written.ok()) return written.error();
  return frame_size;
}

}  // namespace ferry::dataplane
