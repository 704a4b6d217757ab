// CRC-32C (Castagnoli, the iSCSI/ext4/LevelDB checksum) for the state store's on-disk records.
// A small table-driven implementation, since Debian's zlib only has the older CRC-32 polynomial
// and no CRC-32C library is wrapped for the build.

#pragma once

#include <cstdint>

#include "absl/strings/string_view.h"

namespace ferry::controlplane {

// Returns the CRC-32C of `data` appended to bytes whose CRC-32C was `crc` (0 to start), so
// Crc32cExtend(Crc32cExtend(0, a), b) == Crc32c(a + b). Pure function, any thread.
uint32_t Crc32cExtend(uint32_t crc, absl::string_view data);

// CRC-32C of `data`: Crc32c("123456789") == 0xE3069283.
inline uint32_t Crc32c(absl::string_view data) { return Crc32cExtend(0, data); }

// A stored checksum is masked (LevelDB's trick) so that data which embeds its own CRC, or a run of
// zero bytes with a zero checksum, does not check out by accident.
inline uint32_t MaskCrc32c(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }
inline uint32_t UnmaskCrc32c(uint32_t masked) {
  const uint32_t rot = masked - 0xa282ead8u;
  return (rot >> 17) | (rot << 15);
}

}  // namespace ferry::controlplane
