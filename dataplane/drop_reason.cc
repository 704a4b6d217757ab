#include "dataplane/drop_reason.h"

namespace ferry::dataplane {

absl::string_view DropReasonName(DropReason reason) {
  switch (reason) {
    case DropReason::kTooShort:
    case DropReason::kTooLong:
    case DropReason::kBadMagic:
    case DropReason::kBadVersion:
    case DropReason::kBadType:
    case DropReason::kBadFlags:
    case DropReason::kBufferTooSmall:
      // Same value, same label: a codec failure reads the same in both metrics.
      return FrameErrorName(static_cast<FrameError>(reason));
    case DropReason::kBadTag:
      return "bad_tag";
    case DropReason::kUnknownSession:
      return "unknown_session";
    case DropReason::kWrongDirection:
      return "wrong_direction";
    case DropReason::kReplayed:
      return "replayed";
    case DropReason::kCryptoError:
      return "crypto_error";
    case DropReason::kCounterExhausted:
      return "counter_exhausted";
    case DropReason::kServiceNotAllowed:
      return "service_not_allowed";
    case DropReason::kNoRoute:
      return "no_route";
    case DropReason::kUnknownFlow:
      return "unknown_flow";
    case DropReason::kFlowLimit:
      return "flow_limit";
    case DropReason::kFlowClosed:
      return "flow_closed";
    case DropReason::kNoBackend:
      return "no_backend";
    case DropReason::kUnexpectedType:
      return "unexpected_type";
    case DropReason::kQueueFull:
      return "queue_full";
    case DropReason::kSendFailed:
      return "send_failed";
  }
  return "unknown";
}

const std::array<DropReason, kDropReasonCount>& AllDropReasons() {
  static constexpr std::array<DropReason, kDropReasonCount> kAll = [] {
    std::array<DropReason, kDropReasonCount> all{};
    for (size_t i = 0; i < kDropReasonCount; ++i) all[i] = static_cast<DropReason>(i);
    return all;
  }();
  return kAll;
}

DropReason ToDropReason(FrameError error) {
  // DropReason repeats FrameError's values; the static_asserts keep them in step.
  static_assert(static_cast<int>(DropReason::kTooShort) == static_cast<int>(FrameError::kTooShort));
  static_assert(static_cast<int>(DropReason::kTooLong) == static_cast<int>(FrameError::kTooLong));
  static_assert(static_cast<int>(DropReason::kBadMagic) == static_cast<int>(FrameError::kBadMagic));
  static_assert(static_cast<int>(DropReason::kBadVersion) ==
                static_cast<int>(FrameError::kBadVersion));
  static_assert(static_cast<int>(DropReason::kBadType) == static_cast<int>(FrameError::kBadType));
  static_assert(static_cast<int>(DropReason::kBadFlags) == static_cast<int>(FrameError::kBadFlags));
  static_assert(static_cast<int>(DropReason::kBufferTooSmall) ==
                static_cast<int>(FrameError::kBufferTooSmall));
  static_assert(kFrameErrorCount == 7, "add the new FrameError to DropReason");
  return static_cast<DropReason>(error);
}

DropCounters::DropCounters() {
  for (std::atomic<uint64_t>& slot : counts_) slot.store(0, std::memory_order_relaxed);
}

std::array<uint64_t, kDropReasonCount> DropCounters::Snapshot() const {
  std::array<uint64_t, kDropReasonCount> out;
  for (size_t i = 0; i < kDropReasonCount; ++i) {
    out[i] = counts_[i].load(std::memory_order_relaxed);
  }
  return out;
}

uint64_t DropCounters::Total() const {
  uint64_t total = 0;
  for (const std::atomic<uint64_t>& slot : counts_) total += slot.load(std::memory_order_relaxed);
  return total;
}

}  // namespace ferry::dataplane
