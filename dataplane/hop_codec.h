// The two steps every hop performs on a frame, in one place: open a received
// frame (replay check, AEAD open in place, replay-window update, in that
// order) and seal a frame being sent (lay out the header, seal the payload
// already in place). Allocation-free; the caller owns the buffers.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/types/span.h"
#include "dataplane/aead.h"
#include "dataplane/drop_reason.h"
#include "dataplane/frame.h"
#include "dataplane/replay_window.h"

namespace ferry::dataplane {

// Authenticates the whole frame `frame` whose decoded header is `header`.
// Checks `window` first (kReplayed without touching the crypto), then opens in
// place, then records the counter. On success sets *payload to the plaintext
// inside `frame` and returns true; else sets *reason and returns false (the
// window is unchanged unless the frame authenticated).
bool OpenFrame(HopAead& aead, ReplayWindow& window, const FrameHeader& header,
               absl::Span<uint8_t> frame, absl::Span<uint8_t>* payload, DropReason* reason);

// Seals a frame in `out`: `payload_size` plaintext bytes must already be at
// out[kHeaderSize, kHeaderSize + payload_size). Writes `header` and the tag.
// Returns the frame size, or 0 with *reason set (the payload does not fit,
// a bad header, a crypto failure).
size_t SealFrame(HopAead& aead, const FrameHeader& header, size_t payload_size,
                 absl::Span<uint8_t> out, DropReason* reason);

// The payload room of a frame buffer of `buffer_size` bytes.
constexpr size_t PayloadRoom(size_t buffer_size) {
  return buffer_size > kMinFrameSize ? buffer_size - kMinFrameSize : 0;
}

}  // namespace ferry::dataplane
