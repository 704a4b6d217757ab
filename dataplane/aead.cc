#include "dataplane/aead.h"

#include <openssl/err.h>
#include <openssl/evp.h>

#include <climits>
#include <cstring>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "dataplane/big_endian.h"
#include "glog/logging.h"

namespace ferry::dataplane {
namespace {

// OpenSSL's name for the cipher in the default provider.
const char* CipherName(AeadAlgorithm algorithm) {
  switch (algorithm) {
    case AeadAlgorithm::kAes256Gcm:
      return "AES-256-GCM";
    case AeadAlgorithm::kChaCha20Poly1305:
      return "ChaCha20-Poly1305";
  }
  return nullptr;
}

// The oldest queued OpenSSL error as text (and the queue cleared), for statuses.
std::string TakeOpenSslError() {
  const unsigned long code = ERR_get_error();  // NOLINT(runtime/int): OpenSSL's type
  ERR_clear_error();
  if (code == 0) return "no OpenSSL error queued";
  char text[256];
  ERR_error_string_n(code, text, sizeof(text));
  return text;
}

bool FitsInInt(size_t size) { return size <= static_cast<size_t>(INT_MAX); }

// Wipes what a failed open left in `data`: unauthenticated plaintext must not linger.
void Wipe(absl::Span<uint8_t> data) {
  if (!data.empty()) std::memset(data.data(), 0, data.size());
}

}  // namespace

absl::string_view AeadAlgorithmName(AeadAlgorithm algorithm) {
  switch (algorithm) {
    case AeadAlgorithm::kAes256Gcm:
      return "aes_256_gcm";
    case AeadAlgorithm::kChaCha20Poly1305:
      return "chacha20_poly1305";
  }
  return "unknown";
}

absl::string_view AeadStatusName(AeadStatus status) {
  switch (status) {
    case AeadStatus::kOk:
      return "ok";
    case AeadStatus::kTooShort:
      return "too_short";
    case AeadStatus::kTooLong:
      return "too_long";
    case AeadStatus::kWrongDirection:
      return "wrong_direction";
    case AeadStatus::kBadTag:
      return "bad_tag";
    case AeadStatus::kCryptoError:
      return "crypto_error";
  }
  return "unknown";
}

DropReason ToDropReason(AeadStatus status) {
  switch (status) {
    case AeadStatus::kTooShort:
      return DropReason::kTooShort;
    case AeadStatus::kTooLong:
      return DropReason::kTooLong;
    case AeadStatus::kWrongDirection:
      return DropReason::kWrongDirection;
    case AeadStatus::kBadTag:
      return DropReason::kBadTag;
    case AeadStatus::kCryptoError:
      return DropReason::kCryptoError;
    case AeadStatus::kOk:
      break;
  }
  LOG(FATAL) << "ToDropReason(AeadStatus " << static_cast<int>(status)
             << "): not a failure; only failed Seal/Open results are drops";
  return DropReason::kCryptoError;  // Not reached.
}

void HopAead::CipherCtxDeleter::operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }

absl::StatusOr<HopAead> HopAead::Create(AeadAlgorithm algorithm, absl::Span<const uint8_t> key,
                                        HopRole role) {
  if (key.size() != kAeadKeySize) {
    return absl::InvalidArgumentError(
        absl::StrCat("hop key must be ", kAeadKeySize, " bytes, got ", key.size(),
                     "; use the session key the Intermediate issued"));
  }
  const char* cipher_name = CipherName(algorithm);
  if (cipher_name == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("unknown AEAD algorithm ",
                                                   static_cast<int>(algorithm),
                                                   "; use kAes256Gcm or kChaCha20Poly1305"));
  }
  // Fetched once here rather than looked up by EVP on every init.
  EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, cipher_name, nullptr);
  if (cipher == nullptr) {
    return absl::InternalError(absl::StrCat("OpenSSL has no ", cipher_name,
                                            " in its default provider: ", TakeOpenSslError()));
  }
  CipherCtxPtr seal_ctx(EVP_CIPHER_CTX_new());
  CipherCtxPtr open_ctx(EVP_CIPHER_CTX_new());
  bool ok = seal_ctx != nullptr && open_ctx != nullptr &&
            EVP_EncryptInit_ex(seal_ctx.get(), cipher, nullptr, key.data(), nullptr) == 1 &&
            EVP_DecryptInit_ex(open_ctx.get(), cipher, nullptr, key.data(), nullptr) == 1;
  EVP_CIPHER_free(cipher);  // The contexts hold their own references.
  if (!ok) {
    return absl::InternalError(
        absl::StrCat("cannot set up ", cipher_name, " contexts: ", TakeOpenSslError()));
  }
  if (EVP_CIPHER_CTX_get_iv_length(seal_ctx.get()) != static_cast<int>(kNonceSize) ||
      EVP_CIPHER_CTX_get_iv_length(open_ctx.get()) != static_cast<int>(kNonceSize)) {
    return absl::InternalError(
        absl::StrCat(cipher_name, " does not use a ", kNonceSize, "-byte nonce in this OpenSSL"));
  }
  return HopAead(algorithm, role, std::move(seal_ctx), std::move(open_ctx));
}

HopAead::HopAead(AeadAlgorithm algorithm, HopRole role, CipherCtxPtr seal_ctx,
                 CipherCtxPtr open_ctx)
    : algorithm_(algorithm),
      role_(role),
      seal_ctx_(std::move(seal_ctx)),
      open_ctx_(std::move(open_ctx)) {}

HopAead::HopAead(HopAead&&) noexcept = default;
HopAead& HopAead::operator=(HopAead&&) noexcept = default;
HopAead::~HopAead() = default;

AeadStatus HopAead::Seal(absl::Span<uint8_t> frame, size_t payload_size) {
  if (payload_size > kMaxPayloadSize) return AeadStatus::kTooLong;
  if (frame.size() < FrameSize(payload_size)) return AeadStatus::kTooShort;
  uint8_t* p = frame.data();
  if (CounterDirection(LoadBigEndian64(p + kCounterOffset)) != SendDirection(role_)) {
    return AeadStatus::kWrongDirection;
  }
  return SealDetached(absl::MakeConstSpan(p + kFlowIdOffset, kNonceSize),
                      absl::MakeConstSpan(p, kHeaderSize),
                      absl::MakeSpan(p + kHeaderSize, payload_size),
                      absl::MakeSpan(p + kHeaderSize + payload_size, kTagSize));
}

AeadStatus HopAead::Open(absl::Span<uint8_t> frame) {
  if (frame.size() < kMinFrameSize) return AeadStatus::kTooShort;
  if (frame.size() > kMaxFrameSize) return AeadStatus::kTooLong;
  uint8_t* p = frame.data();
  if (CounterDirection(LoadBigEndian64(p + kCounterOffset)) != ReceiveDirection(role_)) {
    return AeadStatus::kWrongDirection;
  }
  const size_t payload_size = frame.size() - kMinFrameSize;
  return OpenDetached(absl::MakeConstSpan(p + kFlowIdOffset, kNonceSize),
                      absl::MakeConstSpan(p, kHeaderSize),
                      absl::MakeSpan(p + kHeaderSize, payload_size),
                      absl::MakeConstSpan(p + kHeaderSize + payload_size, kTagSize));
}

AeadStatus HopAead::SealDetached(absl::Span<const uint8_t> nonce, absl::Span<const uint8_t> aad,
                                 absl::Span<uint8_t> data, absl::Span<uint8_t> tag) {
  CHECK_EQ(nonce.size(), kNonceSize) << "SealDetached: nonce size";
  CHECK_EQ(tag.size(), kTagSize) << "SealDetached: tag size";
  if (!FitsInInt(data.size()) || !FitsInInt(aad.size())) return AeadStatus::kTooLong;
  EVP_CIPHER_CTX* ctx = seal_ctx_.get();
  int out_len = 0;
  uint8_t final_block[16];  // AEAD modes write nothing at Final; EVP wants a pointer anyway.
  if (EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce.data()) != 1 ||
      (!aad.empty() &&
       EVP_EncryptUpdate(ctx, nullptr, &out_len, aad.data(), static_cast<int>(aad.size())) != 1) ||
      (!data.empty() && EVP_EncryptUpdate(ctx, data.data(), &out_len, data.data(),
                                          static_cast<int>(data.size())) != 1) ||
      EVP_EncryptFinal_ex(ctx, final_block, &out_len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kTagSize), tag.data()) !=
          1) {
    ERR_clear_error();
    return AeadStatus::kCryptoError;
  }
  return AeadStatus::kOk;
}

AeadStatus HopAead::OpenDetached(absl::Span<const uint8_t> nonce, absl::Span<const uint8_t> aad,
                                 absl::Span<uint8_t> data, absl::Span<const uint8_t> tag) {
  CHECK_EQ(nonce.size(), kNonceSize) << "OpenDetached: nonce size";
  CHECK_EQ(tag.size(), kTagSize) << "OpenDetached: tag size";
  if (!FitsInInt(data.size()) || !FitsInInt(aad.size())) return AeadStatus::kTooLong;
  EVP_CIPHER_CTX* ctx = open_ctx_.get();
  int out_len = 0;
  uint8_t final_block[16];
  // EVP's SET_TAG takes a non-const pointer but only copies the tag.
  void* tag_in = const_cast<uint8_t*>(tag.data());
  if (EVP_DecryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce.data()) != 1 ||
      (!aad.empty() &&
       EVP_DecryptUpdate(ctx, nullptr, &out_len, aad.data(), static_cast<int>(aad.size())) != 1) ||
      (!data.empty() && EVP_DecryptUpdate(ctx, data.data(), &out_len, data.data(),
                                          static_cast<int>(data.size())) != 1) ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(kTagSize), tag_in) != 1) {
    ERR_clear_error();
    Wipe(data);
    return AeadStatus::kCryptoError;
  }
  if (EVP_DecryptFinal_ex(ctx, final_block, &out_len) != 1) {
    // The only way Final fails after the steps above succeeded is a tag mismatch.
    ERR_clear_error();
    Wipe(data);
    return AeadStatus::kBadTag;
  }
  return AeadStatus::kOk;
}

}  // namespace ferry::dataplane
