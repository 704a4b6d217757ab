#include "dataplane/hop_codec.h"

namespace ferry::dataplane {

bool OpenFrame(HopAead& aead, ReplayWindow& window, const FrameHeader& header,
               absl::Span<uint8_t> frame, absl::Span<uint8_t>* payload, DropReason* reason) {
  if (!window.Check(header.counter)) {
    *reason = DropReason::kReplayed;
    return false;
  }
  AeadStatus status = aead.Open(frame);
  if (status != AeadStatus::kOk) {
    *reason = ToDropReason(status);
    return false;
  }
  window.Update(header.counter);
  *payload = frame.subspan(kHeaderSize, frame.size() - kMinFrameSize);
  return true;
}

size_t SealFrame(HopAead& aead, const FrameHeader& header, size_t payload_size,
                 absl::Span<uint8_t> out, DropReason* reason) {
  FrameResult<size_t> size = EncodeFrame(header, payload_size, out);
  if (!size.ok()) {
    *reason = ToDropReason(size.error());
    return 0;
  }
  AeadStatus status = aead.Seal(out, payload_size);
  if (status != AeadStatus::kOk) {
    *reason = ToDropReason(status);
    return 0;
  }
  return *size;
}

}  // namespace ferry::dataplane
