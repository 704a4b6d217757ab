#include "cli/dev_pki.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/types/span.h"
#include "common/naming.h"
#include "common/spiffe_id.h"

namespace ferry::cli {
namespace {

// ---- OpenSSL ownership -----------------------------------------------------

template <typename T, void (*Free)(T*)>
struct OpenSslDeleter {
  void operator()(T* p) const { Free(p); }
};
template <typename T, void (*Free)(T*)>
using OpenSslPtr = std::unique_ptr<T, OpenSslDeleter<T, Free>>;

using BioPtr = OpenSslPtr<BIO, BIO_free_all>;
using BignumPtr = OpenSslPtr<BIGNUM, BN_free>;
using EvpPkeyPtr = OpenSslPtr<EVP_PKEY, EVP_PKEY_free>;
using EvpPkeyCtxPtr = OpenSslPtr<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using X509Ptr = OpenSslPtr<X509, X509_free>;
using X509ExtensionPtr = OpenSslPtr<X509_EXTENSION, X509_EXTENSION_free>;
using X509StorePtr = OpenSslPtr<X509_STORE, X509_STORE_free>;
using X509StoreCtxPtr = OpenSslPtr<X509_STORE_CTX, X509_STORE_CTX_free>;
using X509NamePtr = OpenSslPtr<X509_NAME, X509_NAME_free>;

void FreeGeneralNames(GENERAL_NAMES* names) { GENERAL_NAMES_free(names); }
using GeneralNamesPtr = OpenSslPtr<GENERAL_NAMES, FreeGeneralNames>;

// INTERNAL status carrying `what` and OpenSSL's queued errors (which it clears).
absl::Status OpenSslError(absl::string_view what) {
  std::vector<std::string> reasons;
  while (unsigned long code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    reasons.emplace_back(buf);
  }
  if (reasons.empty()) return absl::InternalError(absl::StrCat(what, " failed in OpenSSL"));
  return absl::InternalError(absl::StrCat(what, ": ", absl::StrJoin(reasons, "; ")));
}

// ---- Files -----------------------------------------------------------------

std::string JoinPath(absl::string_view dir, absl::string_view file) {
  if (dir.empty()) return std::string(file);
  if (absl::EndsWith(dir, "/")) return absl::StrCat(dir, file);
  return absl::StrCat(dir, "/", file);
}

bool PathExists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

// mkdir -p with mode 0700 for every directory it creates; `dir` itself ends up
// 0700 even when it already existed, since it holds the CA key.
absl::Status EnsurePrivateDir(const std::string& dir) {
  std::string partial;
  for (absl::string_view part : absl::StrSplit(dir, '/')) {
    if (!partial.empty() || absl::StartsWith(dir, "/")) absl::StrAppend(&partial, "/");
    absl::StrAppend(&partial, part);
    if (part.empty() || part == "." || part == "..") continue;
    if (mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) {
      return absl::ErrnoToStatus(errno, absl::StrCat("cannot create directory ", partial));
    }
  }
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot stat ", dir));
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(dir, " exists and is not a directory"));
  }
  if ((st.st_mode & 07777) != 0700 && chmod(dir.c_str(), 0700) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot chmod 0700 ", dir));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot open ", path));
  std::string data;
  char buf[8192];
  while (true) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      absl::Status status = absl::ErrnoToStatus(errno, absl::StrCat("cannot read ", path));
      close(fd);
      return status;
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return data;
}

// Writes `data` to a fresh temporary file next to `path` with exactly `mode`
// (independent of the umask) and fsyncs it; returns the temporary's name.
absl::StatusOr<std::string> WriteTemp(const std::string& path, absl::string_view data,
                                      mode_t mode) {
  std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  unlink(tmp.c_str());  // A leftover from a crashed run of this pid.
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot create ", tmp));
  absl::Status status;
  if (fchmod(fd, mode) != 0) status = absl::ErrnoToStatus(errno, absl::StrCat("chmod ", tmp));
  size_t done = 0;
  while (status.ok() && done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = absl::ErrnoToStatus(errno, absl::StrCat("cannot write ", tmp));
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (status.ok() && fsync(fd) != 0) {
    status = absl::ErrnoToStatus(errno, absl::StrCat("cannot fsync ", tmp));
  }
  if (close(fd) != 0 && status.ok()) {
    status = absl::ErrnoToStatus(errno, absl::StrCat("cannot close ", tmp));
  }
  if (!status.ok()) {
    unlink(tmp.c_str());
    return status;
  }
  return tmp;
}

// One file to replace atomically.
struct PendingFile {
  std::string path;
  std::string data;
  mode_t mode;
};

// Writes every file to a temporary first and only then renames them into
// place, so a failure while writing leaves all the old files untouched and the
// window in which a reader sees a mix of old and new is a few renames wide.
absl::Status ReplaceFiles(const std::vector<PendingFile>& files) {
  std::vector<std::string> temps;
  for (const PendingFile& file : files) {
    absl::StatusOr<std::string> tmp = WriteTemp(file.path, file.data, file.mode);
    if (!tmp.ok()) {
      for (const std::string& t : temps) unlink(t.c_str());
      return tmp.status();
    }
    temps.push_back(*std::move(tmp));
  }
  for (size_t i = 0; i < files.size(); ++i) {
    if (rename(temps[i].c_str(), files[i].path.c_str()) != 0) {
      absl::Status status =
          absl::ErrnoToStatus(errno, absl::StrCat("cannot rename into ", files[i].path));
      for (size_t j = i; j < temps.size(); ++j) unlink(temps[j].c_str());
      return status;
    }
  }
  return absl::OkStatus();
}

// ---- Validation ------------------------------------------------------------

// Dot-separated DNS labels (each one a valid Ferry name), at most 253 characters.
bool IsDnsName(absl::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (absl::string_view label : absl::StrSplit(s, '.')) {
    if (!IsValidName(label)) return false;
  }
  return true;
}

absl::Status ValidateTrustDomain(absl::string_view trust_domain) {
  if (IsDnsName(trust_domain)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("trust domain '", trust_domain,
                   "' is not a lowercase DNS name such as ferry.local (dot-separated labels of "
                   "letters, digits and '-')"));
}

absl::Status ValidateRole(absl::string_view role) {
  if (IsKnownRole(role)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("role '", role, "' is not one of ", absl::StrJoin(DevPkiRoles(), ", ")));
}

absl::Status ValidateDnsSan(absl::string_view name) {
  // A leading wildcard label is legal in a DNS SAN; lowercase keeps matching simple.
  absl::string_view rest = name;
  absl::ConsumePrefix(&rest, "*.");
  if (IsDnsName(rest)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "DNS SAN '", name, "' is not a lowercase DNS name (e.g. localhost, relay.example.com)"));
}

// The 4- or 16-byte binary form of an IP literal.
absl::StatusOr<std::string> ParseIp(absl::string_view ip) {
  std::string text(ip);
  unsigned char buf[16];
  if (inet_pton(AF_INET, text.c_str(), buf) == 1) return std::string(buf, buf + 4);
  if (inet_pton(AF_INET6, text.c_str(), buf) == 1) return std::string(buf, buf + 16);
  return absl::InvalidArgumentError(
      absl::StrCat("IP SAN '", ip, "' is not an IPv4 or IPv6 literal (e.g. 127.0.0.1, ::1)"));
}

// ---- Building certificates -------------------------------------------------

absl::StatusOr<EvpPkeyPtr> GenerateP256Key() {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_EC, nullptr));
  EVP_PKEY* raw = nullptr;
  if (ctx == nullptr || EVP_PKEY_keygen_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx.get(), NID_X9_62_prime256v1) != 1 ||
      EVP_PKEY_keygen(ctx.get(), &raw) != 1) {
    return OpenSslError("generating an ECDSA P-256 key");
  }
  return EvpPkeyPtr(raw);
}

// What goes into a certificate besides its key and issuer.
struct CertSpec {
  std::string subject_cn;
  bool is_ca = false;
  std::vector<std::string> uri_sans;
  std::vector<std::string> dns_sans;
  std::vector<std::string> ip_sans;  // Text form; validated by ParseIp.
  absl::Time not_before;
  absl::Time not_after;
};

absl::Status SetRandomSerial(X509* cert) {
  unsigned char bytes[16];
  do {
    if (RAND_bytes(bytes, sizeof(bytes)) != 1) return OpenSslError("drawing a random serial");
  } while (std::all_of(bytes, bytes + sizeof(bytes), [](unsigned char b) { return b == 0; }));
  // BN_bin2bn reads unsigned big-endian, so the serial is positive; DER adds a
  // leading zero byte when the top bit is set (17 octets, within RFC 5280's 20).
  BignumPtr bn(BN_bin2bn(bytes, sizeof(bytes), nullptr));
  if (bn == nullptr || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) == nullptr) {
    return OpenSslError("setting the serial number");
  }
  return absl::OkStatus();
}

// Adds an extension written in OpenSSL's config syntax ("critical,CA:TRUE").
// Only used with constant values: SANs, which carry user input, are built
// structurally in AddSans so no input can smuggle in extra config.
absl::Status AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509ExtensionPtr ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value));
  if (ext == nullptr || X509_add_ext(cert, ext.get(), -1) != 1) {
    return OpenSslError(absl::StrCat("adding extension ", OBJ_nid2sn(nid), "=", value));
  }
  return absl::OkStatus();
}

absl::Status AddGeneralName(GENERAL_NAMES* names, int type, absl::string_view value) {
  GENERAL_NAME* name = GENERAL_NAME_new();
  if (name == nullptr) return OpenSslError("allocating a SAN");
  ASN1_STRING* str = type == GEN_IPADD ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new();
  if (str == nullptr || ASN1_STRING_set(str, value.data(), static_cast<int>(value.size())) != 1) {
    ASN1_STRING_free(str);
    GENERAL_NAME_free(name);
    return OpenSslError("encoding a SAN");
  }
  GENERAL_NAME_set0_value(name, type, str);
  if (sk_GENERAL_NAME_push(names, name) == 0) {
    GENERAL_NAME_free(name);
    return OpenSslError("adding a SAN");
  }
  return absl::OkStatus();
}

absl::Status AddSans(X509* cert, const CertSpec& spec) {
  if (spec.uri_sans.empty() && spec.dns_sans.empty() && spec.ip_sans.empty()) {
    return absl::OkStatus();
  }
  GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  if (names == nullptr) return OpenSslError("allocating SANs");
  for (const std::string& uri : spec.uri_sans) {
    if (absl::Status s = AddGeneralName(names.get(), GEN_URI, uri); !s.ok()) return s;
  }
  for (const std::string& dns : spec.dns_sans) {
    if (absl::Status s = AddGeneralName(names.get(), GEN_DNS, dns); !s.ok()) return s;
  }
  for (const std::string& ip : spec.ip_sans) {
    absl::StatusOr<std::string> binary = ParseIp(ip);
    if (!binary.ok()) return binary.status();
    if (absl::Status s = AddGeneralName(names.get(), GEN_IPADD, *binary); !s.ok()) return s;
  }
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    return OpenSslError("adding subjectAltName");
  }
  return absl::OkStatus();
}

// Builds and signs a certificate for `key`. `issuer`/`issuer_key` are null for
// a self-signed certificate.
absl::StatusOr<X509Ptr> BuildCert(const CertSpec& spec, EVP_PKEY* key, X509* issuer,
                                  EVP_PKEY* issuer_key) {
  X509Ptr cert(X509_new());
  if (cert == nullptr || X509_set_version(cert.get(), 2) != 1) {  // 2 means v3.
    return OpenSslError("creating a certificate");
  }
  if (absl::Status s = SetRandomSerial(cert.get()); !s.ok()) return s;

  X509NamePtr subject(X509_NAME_new());
  if (subject == nullptr ||
      X509_NAME_add_entry_by_NID(subject.get(), NID_commonName, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(spec.subject_cn.c_str()),
                                 -1, -1, 0) != 1 ||
      X509_set_subject_name(cert.get(), subject.get()) != 1 ||
      X509_set_issuer_name(
          cert.get(), issuer != nullptr ? X509_get_subject_name(issuer) : subject.get()) != 1) {
    return OpenSslError("setting the subject");
  }
  if (ASN1_TIME_set(X509_getm_notBefore(cert.get()), absl::ToTimeT(spec.not_before)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert.get()), absl::ToTimeT(spec.not_after)) == nullptr) {
    return OpenSslError("setting the validity window");
  }
  if (X509_set_pubkey(cert.get(), key) != 1) return OpenSslError("setting the public key");

  X509* signer = issuer != nullptr ? issuer : cert.get();
  struct Ext {
    int nid;
    const char* value;
  };
  // Fixed tables (GCC 12 at -O2 warns, falsely, on assigning an initializer
  // list to a vector here).
  static constexpr Ext kCaExts[] = {{NID_basic_constraints, "critical,CA:TRUE"},
                                    {NID_key_usage, "critical,keyCertSign,cRLSign"},
                                    {NID_subject_key_identifier, "hash"}};
  static constexpr Ext kLeafExts[] = {{NID_basic_constraints, "critical,CA:FALSE"},
                                      {NID_key_usage, "critical,digitalSignature"},
                                      {NID_ext_key_usage, "serverAuth,clientAuth"},
                                      {NID_subject_key_identifier, "hash"},
                                      {NID_authority_key_identifier, "keyid:always"}};
  const absl::Span<const Ext> exts =
      spec.is_ca ? absl::MakeConstSpan(kCaExts) : absl::MakeConstSpan(kLeafExts);
  for (const Ext& ext : exts) {
    if (absl::Status s = AddExtension(cert.get(), signer, ext.nid, ext.value); !s.ok()) return s;
  }
  if (absl::Status s = AddSans(cert.get(), spec); !s.ok()) return s;

  EVP_PKEY* signing_key = issuer_key != nullptr ? issuer_key : key;
  if (X509_sign(cert.get(), signing_key, EVP_sha256()) == 0) {
    return OpenSslError("signing the certificate");
  }
  return cert;
}

absl::StatusOr<std::string> CertToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_X509(bio.get(), cert) != 1) {
    return OpenSslError("encoding the certificate");
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

absl::StatusOr<std::string> KeyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return OpenSslError("encoding the private key");
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

// ---- Reading certificates --------------------------------------------------

absl::StatusOr<X509Ptr> ParseCertPem(absl::string_view pem, absl::string_view what) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509Ptr cert(bio == nullptr ? nullptr : PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (cert == nullptr) {
    absl::Status err = OpenSslError("");
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is not a PEM certificate (", err.message(), ")"));
  }
  return cert;
}

absl::StatusOr<X509Ptr> ReadCertFile(const std::string& path) {
  absl::StatusOr<std::string> pem = ReadFile(path);
  if (!pem.ok()) return pem.status();
  return ParseCertPem(*pem, path);
}

absl::StatusOr<EvpPkeyPtr> ReadKeyFile(const std::string& path) {
  absl::StatusOr<std::string> pem = ReadFile(path);
  if (!pem.ok()) return pem.status();
  BioPtr bio(BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())));
  EvpPkeyPtr key(bio == nullptr ? nullptr
                                : PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr) {
    absl::Status err = OpenSslError("");
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is not a PEM private key (", err.message(), ")"));
  }
  return key;
}

struct Sans {
  std::vector<std::string> uris;
  std::vector<std::string> dns;
  std::vector<std::string> ips;  // Text form.
};

std::string Asn1StringToString(const ASN1_STRING* str) {
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(str)),
                     static_cast<size_t>(ASN1_STRING_length(str)));
}

Sans ReadSans(X509* cert) {
  Sans sans;
  GeneralNamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (names == nullptr) return sans;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    int type = 0;
    const void* value = GENERAL_NAME_get0_value(name, &type);
    const ASN1_STRING* str = static_cast<const ASN1_STRING*>(value);
    switch (type) {
      case GEN_URI:
        sans.uris.push_back(Asn1StringToString(str));
        break;
      case GEN_DNS:
        sans.dns.push_back(Asn1StringToString(str));
        break;
      case GEN_IPADD: {
        std::string bytes = Asn1StringToString(str);
        char text[INET6_ADDRSTRLEN] = {};
        int family = bytes.size() == 4 ? AF_INET : bytes.size() == 16 ? AF_INET6 : 0;
        if (family != 0 && inet_ntop(family, bytes.data(), text, sizeof(text)) != nullptr) {
          sans.ips.emplace_back(text);
        }
        break;
      }
      default:
        break;
    }
  }
  return sans;
}

std::string SubjectCn(X509* cert) {
  X509_NAME* subject = X509_get_subject_name(cert);
  int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index < 0) return "";
  return Asn1StringToString(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index)));
}

absl::Time Asn1TimeToTime(const ASN1_TIME* t) {
  struct tm tm = {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return absl::InfinitePast();
  return absl::FromTimeT(timegm(&tm));
}

std::string SerialHex(X509* cert) {
  BignumPtr bn(ASN1_INTEGER_to_BN(X509_get_serialNumber(cert), nullptr));
  if (bn == nullptr) return "";
  char* hex = BN_bn2hex(bn.get());
  if (hex == nullptr) return "";
  std::string out = absl::AsciiStrToLower(hex);
  OPENSSL_free(hex);
  return out;
}

// OK when `cert` chains to `ca` and is inside its validity window at `now`;
// otherwise the verifier's reason.
absl::Status VerifyAgainst(X509* cert, X509* ca, absl::Time now) {
  X509StorePtr store(X509_STORE_new());
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (store == nullptr || ctx == nullptr || X509_STORE_add_cert(store.get(), ca) != 1 ||
      X509_STORE_CTX_init(ctx.get(), store.get(), cert, nullptr) != 1) {
    return OpenSslError("setting up verification");
  }
  X509_STORE_CTX_set_time(ctx.get(), 0, absl::ToTimeT(now));
  if (X509_verify_cert(ctx.get()) == 1) return absl::OkStatus();
  ERR_clear_error();
  return absl::UnauthenticatedError(
      X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get())));
}

// ---- The CA ----------------------------------------------------------------

struct LoadedCa {
  X509Ptr cert;
  EvpPkeyPtr key;
};

absl::StatusOr<LoadedCa> LoadCa(const std::string& dir) {
  std::string cert_path = JoinPath(dir, kCaCertFile);
  std::string key_path = JoinPath(dir, kCaKeyFile);
  if (!PathExists(cert_path) || !PathExists(key_path)) {
    return absl::FailedPreconditionError(
        absl::StrCat("no dev CA in ", dir, " (", kCaCertFile, " and ", kCaKeyFile,
                     " are needed); create one with `ferryctl pki init --dir ", dir, "`"));
  }
  LoadedCa ca;
  absl::StatusOr<X509Ptr> cert = ReadCertFile(cert_path);
  if (!cert.ok()) return absl::FailedPreconditionError(cert.status().message());
  absl::StatusOr<EvpPkeyPtr> key = ReadKeyFile(key_path);
  if (!key.ok()) return absl::FailedPreconditionError(key.status().message());
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    ERR_clear_error();
    return absl::FailedPreconditionError(
        absl::StrCat(key_path, " does not match ", cert_path,
                     "; re-create the CA with `ferryctl pki init --force`"));
  }
  ca.cert = *std::move(cert);
  ca.key = *std::move(key);
  return ca;
}

// The trust domain recorded in the CA's "spiffe://<td>" URI SAN, if any.
std::optional<std::string> CaTrustDomain(X509* ca) {
  for (const std::string& uri : ReadSans(ca).uris) {
    absl::string_view td = uri;
    if (absl::ConsumePrefix(&td, "spiffe://") && IsDnsName(td)) return std::string(td);
  }
  return std::nullopt;
}

// Signs `spec` with the CA and writes the key and certificate for `stem`,
// optionally keeping the old pair as .prev copies.
absl::StatusOr<IssuedPaths> IssueAndWrite(const std::string& dir, const std::string& stem,
                                          const CertSpec& spec, const LoadedCa& ca,
                                          bool keep_prev) {
  absl::StatusOr<EvpPkeyPtr> key = GenerateP256Key();
  if (!key.ok()) return key.status();
  absl::StatusOr<X509Ptr> cert = BuildCert(spec, key->get(), ca.cert.get(), ca.key.get());
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> cert_pem = CertToPem(cert->get());
  if (!cert_pem.ok()) return cert_pem.status();
  absl::StatusOr<std::string> key_pem = KeyToPem(key->get());
  if (!key_pem.ok()) return key_pem.status();

  IssuedPaths paths{JoinPath(dir, absl::StrCat(stem, ".crt")),
                    JoinPath(dir, absl::StrCat(stem, ".key"))};
  if (keep_prev) {
    std::vector<PendingFile> prev;
    for (const auto& [path, mode] : {std::pair<std::string, mode_t>{paths.cert_path, 0644},
                                     std::pair<std::string, mode_t>{paths.key_path, 0600}}) {
      if (!PathExists(path)) continue;
      absl::StatusOr<std::string> old = ReadFile(path);
      if (!old.ok()) return old.status();
      prev.push_back({absl::StrCat(path, ".prev"), *std::move(old), mode});
    }
    if (absl::Status s = ReplaceFiles(prev); !s.ok()) return s;
  }
  // The key is renamed first: a reader that sees the new certificate finds the
  // new key already in place.
  if (absl::Status s =
          ReplaceFiles({{paths.key_path, *key_pem, 0600}, {paths.cert_path, *cert_pem, 0644}});
      !s.ok()) {
    return s;
  }
  return paths;
}

}  // namespace

const std::vector<std::string>& DevPkiRoles() {
  static const auto* roles =
      new std::vector<std::string>{"connector", "agent", "relay", "admin", "intermediate"};
  return *roles;
}

std::string CertFileStem(absl::string_view role, absl::string_view tenant, absl::string_view name) {
  return absl::StrCat(role, "-", tenant, "-", name);
}

absl::Status InitCa(const std::string& dir, const CaOptions& options) {
  if (absl::Status s = ValidateTrustDomain(options.trust_domain); !s.ok()) return s;
  if (options.validity <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("CA validity must be positive, got ", absl::FormatDuration(options.validity)));
  }
  if (dir.empty()) return absl::InvalidArgumentError("CA directory must not be empty");
  if (absl::Status s = EnsurePrivateDir(dir); !s.ok()) return s;
  std::string cert_path = JoinPath(dir, kCaCertFile);
  std::string key_path = JoinPath(dir, kCaKeyFile);
  if (!options.force && (PathExists(cert_path) || PathExists(key_path))) {
    return absl::AlreadyExistsError(
        absl::StrCat("a dev CA already exists in ", dir,
                     "; pass --force to replace it (certificates it issued stop verifying)"));
  }

  absl::StatusOr<EvpPkeyPtr> key = GenerateP256Key();
  if (!key.ok()) return key.status();
  absl::Time now = absl::Now();
  CertSpec spec;
  spec.subject_cn = absl::StrCat("Ferry dev CA (", options.trust_domain, ")");
  spec.is_ca = true;
  spec.uri_sans = {absl::StrCat("spiffe://", options.trust_domain)};
  spec.not_before = now - absl::Hours(1);
  spec.not_after = now + options.validity;
  absl::StatusOr<X509Ptr> cert = BuildCert(spec, key->get(), nullptr, nullptr);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> cert_pem = CertToPem(cert->get());
  if (!cert_pem.ok()) return cert_pem.status();
  absl::StatusOr<std::string> key_pem = KeyToPem(key->get());
  if (!key_pem.ok()) return key_pem.status();
  return ReplaceFiles({{key_path, *key_pem, 0600}, {cert_path, *cert_pem, 0644}});
}

absl::StatusOr<IssuedPaths> Issue(const std::string& dir, const IssueOptions& options) {
  if (absl::Status s = ValidateName(NameKind::kTenant, options.tenant); !s.ok()) return s;
  if (absl::Status s = ValidateRole(options.role); !s.ok()) return s;
  if (absl::Status s = ValidateName(NameKind::kComponent, options.name); !s.ok()) return s;

  CertSpec spec;
  spec.subject_cn = options.name;
  spec.dns_sans = options.dns_sans;
  spec.ip_sans = options.ip_sans;
  if (options.role == "intermediate") {
    if (spec.dns_sans.empty()) spec.dns_sans = {"localhost", options.name};
    if (spec.ip_sans.empty()) spec.ip_sans = {"127.0.0.1", "::1"};
  }
  for (const std::string& dns : spec.dns_sans) {
    if (absl::Status s = ValidateDnsSan(dns); !s.ok()) return s;
  }
  for (const std::string& ip : spec.ip_sans) {
    if (absl::StatusOr<std::string> parsed = ParseIp(ip); !parsed.ok()) return parsed.status();
  }
  absl::Time now = absl::Now();
  spec.not_before = options.not_before.value_or(now - absl::Hours(1));
  spec.not_after = options.not_after.value_or(now + absl::Hours(24 * 365));
  if (spec.not_before >= spec.not_after) {
    return absl::InvalidArgumentError(
        absl::StrCat("not_before (", absl::FormatTime(spec.not_before),
                     ") must be before not_after (", absl::FormatTime(spec.not_after), ")"));
  }
  if (!options.trust_domain.empty()) {
    if (absl::Status s = ValidateTrustDomain(options.trust_domain); !s.ok()) return s;
  }
  if (options.uri_san_override.has_value()) {
    for (char c : *options.uri_san_override) {
      if (!absl::ascii_isgraph(c)) {
        return absl::InvalidArgumentError(
            "uri_san_override must be printable ASCII without spaces (it is an IA5String)");
      }
    }
  }

  absl::StatusOr<LoadedCa> ca = LoadCa(dir);
  if (!ca.ok()) return ca.status();
  std::string trust_domain = options.trust_domain;
  if (trust_domain.empty()) {
    trust_domain = CaTrustDomain(ca->cert.get()).value_or(kDefaultTrustDomain);
  }
  if (!options.uri_san_override.has_value()) {
    spec.uri_sans = {SpiffeId{trust_domain, options.tenant, options.role, options.name}.ToUri()};
  } else if (!options.uri_san_override->empty()) {
    spec.uri_sans = {*options.uri_san_override};
  }

  std::string stem = CertFileStem(options.role, options.tenant, options.name);
  if (!options.force) {
    for (const char* ext : {".crt", ".key"}) {
      std::string path = JoinPath(dir, absl::StrCat(stem, ext));
      if (PathExists(path)) {
        return absl::AlreadyExistsError(
            absl::StrCat(path, " already exists; use `ferryctl pki rotate ", stem,
                         "` for a fresh key with the same names, or --force to overwrite"));
      }
    }
  }
  return IssueAndWrite(dir, stem, spec, *ca, /*keep_prev=*/false);
}

absl::StatusOr<std::vector<CertInfo>> List(const std::string& dir, absl::Time now) {
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec == std::errc::no_such_file_or_directory) {
    return absl::NotFoundError(absl::StrCat(
        "no directory ", dir, "; create a CA there with `ferryctl pki init --dir ", dir, "`"));
  }
  if (ec) return absl::ErrnoToStatus(ec.value(), absl::StrCat("cannot list ", dir));
  std::vector<std::string> files;
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    std::string file = it->path().filename().string();
    if (absl::EndsWith(file, ".crt") && it->is_regular_file(ec)) files.push_back(file);
  }
  if (ec) return absl::ErrnoToStatus(ec.value(), absl::StrCat("cannot list ", dir));
  std::sort(files.begin(), files.end());

  absl::StatusOr<X509Ptr> ca = ReadCertFile(JoinPath(dir, kCaCertFile));
  std::vector<CertInfo> out;
  for (const std::string& file : files) {
    CertInfo info;
    info.file = file;
    absl::StatusOr<X509Ptr> cert = ReadCertFile(JoinPath(dir, file));
    if (!cert.ok()) {
      info.verify_error = std::string(cert.status().message());
      out.push_back(std::move(info));
      continue;
    }
    X509* x = cert->get();
    info.is_ca = X509_check_ca(x) != 0;
    info.subject_cn = SubjectCn(x);
    Sans sans = ReadSans(x);
    if (!sans.uris.empty()) info.uri_san = sans.uris.front();
    info.dns_sans = std::move(sans.dns);
    info.ip_sans = std::move(sans.ips);
    info.serial_hex = SerialHex(x);
    info.not_before = Asn1TimeToTime(X509_get0_notBefore(x));
    info.not_after = Asn1TimeToTime(X509_get0_notAfter(x));
    // Floor, not truncation: anything expired is negative, the last day is 0.
    info.days_left = absl::Floor(info.not_after - now, absl::Hours(24)) / absl::Hours(24);
    if (!ca.ok()) {
      info.verify_error = absl::StrCat("cannot load ", kCaCertFile, ": ", ca.status().message());
    } else if (absl::Status verified = VerifyAgainst(x, ca->get(), now); verified.ok()) {
      info.verifies = true;
    } else {
      info.verify_error = std::string(verified.message());
    }
    out.push_back(std::move(info));
  }
  return out;
}

absl::StatusOr<std::vector<CertInfo>> List(const std::string& dir) {
  return List(dir, absl::Now());
}

absl::StatusOr<IssuedPaths> Rotate(const std::string& dir, const std::string& file_stem) {
  absl::string_view stem = file_stem;
  absl::ConsumeSuffix(&stem, ".crt");
  if (stem.empty() || absl::StrContains(stem, '/') || stem == "." || stem == "..") {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", file_stem, "' is not a certificate file stem such as connector-acme-web"));
  }
  if (absl::StrCat(stem, ".crt") == kCaCertFile) {
    return absl::InvalidArgumentError(
        "the CA is not rotated with `pki rotate`; use `ferryctl pki init --force`");
  }
  std::string cert_path = JoinPath(dir, absl::StrCat(stem, ".crt"));
  if (!PathExists(cert_path)) {
    return absl::NotFoundError(absl::StrCat("no certificate ", cert_path,
                                            "; `ferryctl pki list` shows the ones in ", dir));
  }
  absl::StatusOr<X509Ptr> old = ReadCertFile(cert_path);
  if (!old.ok()) return old.status();
  absl::StatusOr<LoadedCa> ca = LoadCa(dir);
  if (!ca.ok()) return ca.status();

  X509* x = old->get();
  CertSpec spec;
  spec.subject_cn = SubjectCn(x);
  Sans sans = ReadSans(x);
  spec.uri_sans = std::move(sans.uris);
  spec.dns_sans = std::move(sans.dns);
  spec.ip_sans = std::move(sans.ips);
  absl::Duration lifetime =
      Asn1TimeToTime(X509_get0_notAfter(x)) - Asn1TimeToTime(X509_get0_notBefore(x));
  if (lifetime <= absl::ZeroDuration()) lifetime = absl::Hours(24 * 365);
  spec.not_before = absl::Now() - absl::Hours(1);
  spec.not_after = spec.not_before + lifetime;
  return IssueAndWrite(dir, std::string(stem), spec, *ca, /*keep_prev=*/true);
}

}  // namespace ferry::cli
