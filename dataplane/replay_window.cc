#include "dataplane/replay_window.h"

namespace ferry::dataplane {

bool ReplayWindow::Check(uint64_t counter) const {
  if (counter > highest_) return true;
  if (highest_ - counter >= kReplayWindowSize) return false;
  return (bitmap_[BlockIndex(counter)] & BitMask(counter)) == 0;
}

void ReplayWindow::Update(uint64_t counter) {
  if (counter > highest_) {
    // Clear the blocks the window slides into; they still hold bits of
    // counters one ring-turn older, which are all below the window by now.
    const uint64_t highest_block = highest_ / kBitsPerBlock;
    const uint64_t blocks_ahead = counter / kBitsPerBlock - highest_block;
    if (blocks_ahead >= kBlocks) {
      bitmap_.fill(0);
    } else {
      for (uint64_t i = 1; i <= blocks_ahead; ++i) {
        bitmap_[(highest_block + i) % kBlocks] = 0;
      }
    }
    highest_ = counter;
  } else if (highest_ - counter >= kReplayWindowSize) {
    return;  // Too old: its block may already hold newer counters.
  }
  bitmap_[BlockIndex(counter)] |= BitMask(counter);
}

bool ReplayWindow::CheckAndUpdate(uint64_t counter) {
  if (!Check(counter)) return false;
  Update(counter);
  return true;
}

void ReplayWindow::Reset() {
  highest_ = 0;
  bitmap_.fill(0);
}

}  // namespace ferry::dataplane
