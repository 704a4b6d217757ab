// Why the data plane drops a frame, and the per-worker counters that count it.
//
// On the per-packet path bad input is never an error return up a stack: the
// worker drops the frame and bumps one DropCounters slot. The metrics thread
// reads the slots and exports them as `..._drops_total{reason="<name>"}`, so
// DropReasonName() values are a stable interface: add reasons, never rename one.

#ifndef FERRY_DATAPLANE_DROP_REASON_H_
#define FERRY_DATAPLANE_DROP_REASON_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "dataplane/frame.h"

namespace ferry::dataplane {

enum class DropReason : uint8_t {
  // The frame codec (one per FrameError, same values and names).
  kTooShort = 0,        // "too_short": shorter than a header and a tag
  kTooLong = 1,         // "too_long": longer than kMaxFrameSize
  kBadMagic = 2,        // "bad_magic"
  kBadVersion = 3,      // "bad_version"
  kBadType = 4,         // "bad_type"
  kBadFlags = 5,        // "bad_flags"
  kBufferTooSmall = 6,  // "buffer_too_small": no room to re-encode a frame for the next hop
  // Authentication and anti-replay.
  kBadTag = 7,             // "bad_tag": AEAD open failed (wrong key, tampered header/payload/tag)
  kUnknownSession = 8,     // "unknown_session": no key for the frame's session_id
  kWrongDirection = 9,     // "wrong_direction": counter's direction bit is not the one expected
  kReplayed = 10,          // "replayed": counter already seen or older than the replay window
  kCryptoError = 11,       // "crypto_error": the crypto library failed (not the peer's fault)
  kCounterExhausted = 12,  // "counter_exhausted": a flow's send counter ran out of sequences
  // Policy, flows and routing.
  kServiceNotAllowed = 13,  // "service_not_allowed": session is not bound to the service_id
  kNoRoute = 14,            // "no_route": no route for the service
  kUnknownFlow = 15,        // "unknown_flow": frame for a flow with no state and no OPEN flag
  kFlowLimit = 16,          // "flow_limit": the flow table is full
  kFlowClosed = 17,         // "flow_closed": data after the sender's FIN, or on a closed flow
  kNoBackend = 18,          // "no_backend": the service has no healthy backend
  kUnexpectedType = 19,     // "unexpected_type": a valid type this party does not accept here
  // Output.
  kQueueFull = 20,   // "queue_full": a bounded send queue or the socket buffer is full
  kSendFailed = 21,  // "send_failed": the kernel refused the send (other than full)
};
inline constexpr size_t kDropReasonCount = 22;

// Stable snake_case metric label (listed beside each enumerator above);
// "unknown" for a value outside the enum.
absl::string_view DropReasonName(DropReason reason);

// Every reason, in enum order: for exporting all counters, zeros included.
const std::array<DropReason, kDropReasonCount>& AllDropReasons();

// The drop reason for a frame that failed to decode or encode.
DropReason ToDropReason(FrameError error);

// Per-reason drop counts: one fixed array, no allocation, no lock.
//
// Threads: exactly one thread (the worker that owns the object) may call
// Increment(); any number of threads may call Get(), Snapshot() and Total() at
// the same time as it. Each counter is a relaxed atomic written by a plain
// load+store (no read-modify-write), so two concurrent writers would lose
// counts; readers see every counter non-decreasing, but a Snapshot() is not
// one instant across reasons. The object must outlive every reader.
class alignas(64) DropCounters {
 public:
  DropCounters();
  DropCounters(const DropCounters&) = delete;
  DropCounters& operator=(const DropCounters&) = delete;

  // Adds `count` to `reason`'s counter. Owning worker thread only.
  void Increment(DropReason reason, uint64_t count = 1) {
    std::atomic<uint64_t>& slot = counts_[static_cast<size_t>(reason)];
    slot.store(slot.load(std::memory_order_relaxed) + count, std::memory_order_relaxed);
  }

  // The current count for `reason`. Any thread.
  uint64_t Get(DropReason reason) const {
    return counts_[static_cast<size_t>(reason)].load(std::memory_order_relaxed);
  }

  // All counts, indexed by static_cast<size_t>(DropReason). Any thread.
  std::array<uint64_t, kDropReasonCount> Snapshot() const;

  // Sum over all reasons. Any thread.
  uint64_t Total() const;

 private:
  std::array<std::atomic<uint64_t>, kDropReasonCount> counts_;
};

}  // namespace ferry::dataplane

#endif  // FERRY_DATAPLANE_DROP_REASON_H_
