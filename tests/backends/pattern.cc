#include "tests/backends/pattern.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <vector>

#include "absl/strings/escaping.h"

namespace ferry::backends {
namespace {

[[noreturn]] void Die(const char* what) {
  std::cerr << "pattern.cc: " << what << "\n";
  std::abort();
}

}  // namespace

void FillPattern(uint64_t offset, absl::Span<uint8_t> out) {
  for (size_t i = 0; i < out.size(); ++i) out[i] = PatternByte(offset + i);
}

std::string PatternBytes(uint64_t offset, size_t size) {
  std::string out(size, '\0');
  FillPattern(offset, absl::MakeSpan(reinterpret_cast<uint8_t*>(out.data()), out.size()));
  return out;
}

void Sha256::MdCtxDeleter::operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1) {
    Die("cannot initialize SHA-256");
  }
}

Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::Update(absl::Span<const uint8_t> data) {
  if (ctx_ == nullptr) Die("Sha256::Update after HexDigest");
  if (data.empty()) return;
  if (EVP_DigestUpdate(ctx_.get(), data.data(), data.size()) != 1) Die("EVP_DigestUpdate failed");
}

void Sha256::Update(absl::string_view data) {
  Update(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
}

std::string Sha256::HexDigest() {
  if (ctx_ == nullptr) Die("Sha256::HexDigest called twice");
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_DigestFinal_ex(ctx_.get(), digest, &size) != 1) Die("EVP_DigestFinal_ex failed");
  ctx_.reset();
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), size));
}

std::string Sha256Hex(absl::string_view data) {
  Sha256 sha;
  sha.Update(data);
  return sha.HexDigest();
}

std::string PatternSha256Hex(uint64_t size) {
  Sha256 sha;
  std::vector<uint8_t> chunk(1 << 16);
  for (uint64_t offset = 0; offset < size; offset += chunk.size()) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(chunk.size(), size - offset));
    FillPattern(offset, absl::MakeSpan(chunk.data(), n));
    sha.Update(absl::MakeConstSpan(chunk.data(), n));
  }
  return sha.HexDigest();
}

}  // namespace ferry::backends
