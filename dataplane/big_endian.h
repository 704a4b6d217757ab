// Big-endian (network order) loads and stores on raw byte pointers.
//
// The 0x2F frame header is big-endian on the wire. These helpers read and write
// unaligned fields without undefined behaviour; GCC and Clang compile each one
// to a single load or store plus a byte swap. Callers check bounds first.

#ifndef FERRY_DATAPLANE_BIG_ENDIAN_H_
#define FERRY_DATAPLANE_BIG_ENDIAN_H_

#include <cstdint>

namespace ferry::dataplane {

// Reads a big-endian value from p[0, sizeof(value)). p must point at that many bytes.
inline uint16_t LoadBigEndian16(const uint8_t* p) {
  return static_cast<uint16_t>((uint16_t{p[0]} << 8) | uint16_t{p[1]});
}

inline uint32_t LoadBigEndian32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

inline uint64_t LoadBigEndian64(const uint8_t* p) {
  return (uint64_t{LoadBigEndian32(p)} << 32) | uint64_t{LoadBigEndian32(p + 4)};
}

// Writes `value` big-endian to p[0, sizeof(value)). p must point at that many bytes.
inline void StoreBigEndian16(uint8_t* p, uint16_t value) {
  p[0] = static_cast<uint8_t>(value >> 8);
  p[1] = static_cast<uint8_t>(value);
}

inline void StoreBigEndian32(uint8_t* p, uint32_t value) {
  p[0] = static_cast<uint8_t>(value >> 24);
  p[1] = static_cast<uint8_t>(value >> 16);
  p[2] = static_cast<uint8_t>(value >> 8);
  p[3] = static_cast<uint8_t>(value);
}

inline void StoreBigEndian64(uint8_t* p, uint64_t value) {
  StoreBigEndian32(p, static_cast<uint32_t>(value >> 32));
  StoreBigEndian32(p + 4, static_cast<uint32_t>(value));
}

}  // namespace ferry::dataplane

#endif  // FERRY_DATAPLANE_BIG_ENDIAN_H_
