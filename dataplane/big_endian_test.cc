#include "dataplane/big_endian.h"

#include <array>
#include <cstdint>

#include "gtest/gtest.h"

namespace ferry::dataplane {
namespace {

TEST(BigEndianTest, LoadsReadMostSignificantByteFirst) {
  const std::array<uint8_t, 8> bytes = {0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF};
  EXPECT_EQ(LoadBigEndian16(bytes.data()), 0x0123u);
  EXPECT_EQ(LoadBigEndian32(bytes.data()), 0x01234567u);
  EXPECT_EQ(LoadBigEndian64(bytes.data()), 0x0123456789ABCDEFull);
}

TEST(BigEndianTest, StoresWriteMostSignificantByteFirst) {
  std::array<uint8_t, 8> bytes = {};
  StoreBigEndian16(bytes.data(), 0xBEEF);
  EXPECT_EQ(bytes[0], 0xBE);
  EXPECT_EQ(bytes[1], 0xEF);
  StoreBigEndian32(bytes.data(), 0xDEADBEEF);
  EXPECT_EQ(bytes, (std::array<uint8_t, 8>{0xDE, 0xAD, 0xBE, 0xEF, 0, 0, 0, 0}));
  StoreBigEndian64(bytes.data(), 0xFEDCBA9876543210ull);
  EXPECT_EQ(bytes, (std::array<uint8_t, 8>{0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10}));
}

TEST(BigEndianTest, UnalignedRoundTripOfExtremeValues) {
  std::array<uint8_t, 11> buffer = {};
  for (uint64_t value : {uint64_t{0}, uint64_t{1}, uint64_t{1} << 63, ~uint64_t{0}}) {
    StoreBigEndian64(buffer.data() + 3, value);
    EXPECT_EQ(LoadBigEndian64(buffer.data() + 3), value);
    StoreBigEndian32(buffer.data() + 1, static_cast<uint32_t>(value >> 7));
    EXPECT_EQ(LoadBigEndian32(buffer.data() + 1), static_cast<uint32_t>(value >> 7));
    StoreBigEndian16(buffer.data() + 9, static_cast<uint16_t>(value >> 3));
    EXPECT_EQ(LoadBigEndian16(buffer.data() + 9), static_cast<uint16_t>(value >> 3));
  }
}

}  // namespace
}  // namespace ferry::dataplane
