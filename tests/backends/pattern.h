// The bytes the test backends send and the digests they answer with, shared by
// the backend server and the clients that check it: a deterministic byte
// pattern (byte i of a stream is (i * 131 + 7) & 0xff, so a receiver can check
// any slice of a 64 MiB transfer without keeping it) and SHA-256 (OpenSSL EVP)
// as lower-case hex.
#pragma once

#include <openssl/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace ferry::backends {

// Byte `index` of the pattern: (index * 131 + 7) & 0xff.
constexpr uint8_t PatternByte(uint64_t index) {
  return static_cast<uint8_t>((index * 131 + 7) & 0xff);
}

// Writes pattern bytes [offset, offset + out.size()) into `out`.
void FillPattern(uint64_t offset, absl::Span<uint8_t> out);

// Pattern bytes [offset, offset + size) as a string.
std::string PatternBytes(uint64_t offset, size_t size);

// Incremental SHA-256. Not thread-safe; movable, not copyable.
class Sha256 {
 public:
  // Aborts if OpenSSL cannot set SHA-256 up (a broken installation, not input).
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  void Update(absl::Span<const uint8_t> data);
  void Update(absl::string_view data);

  // The 64 lower-case hex digits of the digest of everything given to
  // Update. Call once; the object is spent afterwards (Update or a second
  // HexDigest aborts).
  std::string HexDigest();

 private:
  struct MdCtxDeleter {
    void operator()(EVP_MD_CTX* ctx) const;
  };
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx_;
};

// SHA-256 of `data`, as 64 lower-case hex digits.
std::string Sha256Hex(absl::string_view data);

// SHA-256 of pattern bytes [0, size), computed in chunks (no `size`-byte buffer).
std::string PatternSha256Hex(uint64_t size);

}  // namespace ferry::backends
