// Sliding anti-replay window over frame counters (RFC 6479-style bitmap).
//
// A receiver keeps one ReplayWindow per (session, flow_id, direction) it
// receives on. It accepts each counter at most once, in any order, as long as
// the counter is not older than the window: within kReplayWindowSize of the
// highest counter accepted so far. Counters are taken as the full 64-bit wire
// value; the direction bit is the same for everything one window sees.
//
// The bitmap is a ring of 64-bit blocks, one more block than the window needs,
// so sliding forward only clears whole blocks (RFC 6479 section 2): O(1) per
// in-order counter, no shifting, no allocation. 272 bytes per window.
//
// Use: Check(counter) before HopAead::Open (cheap early drop), Update(counter)
// only after the tag verified, since an unauthenticated counter must never
// move the window (a forged far-ahead counter would lock the flow out).

#ifndef FERRY_DATAPLANE_REPLAY_WINDOW_H_
#define FERRY_DATAPLANE_REPLAY_WINDOW_H_

#include <array>
#include <cstddef>
#include <cstdint>

namespace ferry::dataplane {

// Counters strictly more than this far below the highest accepted one are
// rejected as too old.
inline constexpr uint64_t kReplayWindowSize = 2048;

// Not thread-safe (one owner: the worker that owns the flow). Copyable.
class ReplayWindow {
 public:
  // An empty window: it has seen nothing, so every counter (0 included) is new.
  ReplayWindow() = default;

  // True when `counter` would be accepted: ahead of everything seen so far, or
  // within the window and not yet seen. Changes nothing.
  bool Check(uint64_t counter) const;

  // Records `counter` as seen, sliding the window forward if it is the new
  // highest. Call only for a counter whose frame authenticated and that
  // Check() accepted; a too-old counter is ignored, a repeated one is a no-op.
  void Update(uint64_t counter);

  // Check() and, if it passes, Update(): true when `counter` was new. Only for
  // frames whose tag has already verified.
  bool CheckAndUpdate(uint64_t counter);

  // The highest counter recorded; 0 for an empty window.
  uint64_t highest() const { return highest_; }

  // Back to an empty window (e.g. after a rekey restarts the sequences).
  void Reset();

 private:
  static constexpr size_t kBitsPerBlock = 64;
  // The window plus one block of slack, so that the block holding
  // highest_ - (kReplayWindowSize - 1) is never the block being cleared.
  static constexpr size_t kBlocks = kReplayWindowSize / kBitsPerBlock + 1;
  static_assert(kReplayWindowSize % kBitsPerBlock == 0, "window must be whole blocks");

  static size_t BlockIndex(uint64_t counter) { return (counter / kBitsPerBlock) % kBlocks; }
  static uint64_t BitMask(uint64_t counter) { return uint64_t{1} << (counter % kBitsPerBlock); }

  uint64_t highest_ = 0;
  std::array<uint64_t, kBlocks> bitmap_ = {};
};

}  // namespace ferry::dataplane

#endif  // FERRY_DATAPLANE_REPLAY_WINDOW_H_
