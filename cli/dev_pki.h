// The development PKI behind `ferryctl pki`: a local CA and the mTLS
// certificates Ferry's parties present to each other.
//
// Everything lives in one directory (0700):
//   ca.crt, ca.key                        the dev CA (ECDSA P-256, self-signed)
//   <role>-<tenant>-<name>.crt / .key     issued certificates (ECDSA P-256)
//   <stem>.crt.prev / <stem>.key.prev     the pair a Rotate replaced
// Keys are PKCS#8 PEM, written 0600. Every file is written to a temporary name
// and renamed into place, so a reader never sees a half-written file.
//
// Issued certificates carry the identity Ferry authorizes on (see DESIGN.md,
// "Identity"): the URI SAN spiffe://<trust_domain>/tenant/<tenant>/<role>/<name>,
// formatted by common/spiffe_id.h so that ParseSpiffeId accepts it.
// This is a development tool: the CA key sits unencrypted on disk.
//
// Thread safety: the functions hold no state; concurrent calls on the same
// directory race on the files like any two processes would.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace ferry::cli {

inline constexpr char kDefaultTrustDomain[] = "ferry.local";
inline constexpr char kCaCertFile[] = "ca.crt";
inline constexpr char kCaKeyFile[] = "ca.key";

struct CaOptions {
  // SPIFFE trust domain the CA vouches for; lowercase DNS-like labels.
  // It goes into the subject CN ("Ferry dev CA (<trust_domain>)") and into a
  // URI SAN "spiffe://<trust_domain>", from which Issue reads it back.
  std::string trust_domain = kDefaultTrustDomain;
  // Lifetime of the CA certificate, starting one hour in the past (to absorb
  // clock skew between processes). Must be positive.
  absl::Duration validity = absl::Hours(24 * 3650);
  // Replace an existing ca.crt/ca.key. Certificates issued by the old CA
  // stop verifying.
  bool force = false;
};

// Creates the dev CA in `dir` (created with its missing parents, mode 0700;
// an existing `dir` is chmod-ed to 0700): writes ca.crt and ca.key (0600).
// The certificate is self-signed with basicConstraints CA:TRUE (critical),
// keyUsage keyCertSign+cRLSign (critical) and a subject key identifier.
// Errors: ALREADY_EXISTS when ca.crt or ca.key exists and !options.force;
// INVALID_ARGUMENT for a bad trust domain or non-positive validity;
// INTERNAL / PERMISSION_DENIED for OpenSSL or filesystem failures.
absl::Status InitCa(const std::string& dir, const CaOptions& options);

// The roles a certificate may be issued for: the four of DESIGN.md plus
// "intermediate", the control-plane server (the same set as
// ferry::IsKnownRole in common/spiffe_id.h, listed for help and errors).
const std::vector<std::string>& DevPkiRoles();

struct IssueOptions {
  // DNS labels, [a-z0-9]([a-z0-9-]{0,61}[a-z0-9])? (common/naming.h).
  std::string tenant;
  std::string role;  // One of DevPkiRoles().
  std::string name;  // Also the subject CN.
  // Empty: the CA's trust domain (from its URI SAN), else "ferry.local".
  std::string trust_domain;
  // DNS and IP SANs. For the server role "intermediate", an empty dns_sans
  // becomes {"localhost", name} and an empty ip_sans {"127.0.0.1", "::1"}, so
  // a local Intermediate is reachable by the names clients dial.
  std::vector<std::string> dns_sans;
  std::vector<std::string> ip_sans;  // IPv4 or IPv6 literals.
  // Validity window; defaults now-1h .. now+365d. Tests set both in the past
  // to make an expired certificate. not_before must be before not_after.
  std::optional<absl::Time> not_before;
  std::optional<absl::Time> not_after;
  // Test escape hatch: when set, this exact string is the URI SAN instead of
  // the SPIFFE ID; when set to "", the certificate has no URI SAN at all.
  std::optional<std::string> uri_san_override;
  // Replace existing files for this identity (without keeping .prev; use
  // Rotate for that).
  bool force = false;
};

struct IssuedPaths {
  std::string cert_path;  // <dir>/<stem>.crt
  std::string key_path;   // <dir>/<stem>.key
};

// "<role>-<tenant>-<name>": the file stem Issue writes for these options.
std::string CertFileStem(absl::string_view role, absl::string_view tenant, absl::string_view name);

// Issues a fresh ECDSA P-256 key and a certificate signed by the CA in `dir`:
// subject CN = name, random positive 128-bit serial, basicConstraints CA:FALSE,
// keyUsage digitalSignature (critical), extendedKeyUsage serverAuth+clientAuth,
// SANs as described in IssueOptions, authority/subject key identifiers.
// Writes <dir>/<stem>.crt and <dir>/<stem>.key (0600) and returns their paths.
// Errors: INVALID_ARGUMENT naming the bad field (tenant, role, name, trust
// domain, a SAN, the validity window); FAILED_PRECONDITION when `dir` holds no
// usable CA (run InitCa first) or ca.key does not match ca.crt;
// ALREADY_EXISTS when the files exist and !options.force.
absl::StatusOr<IssuedPaths> Issue(const std::string& dir, const IssueOptions& options);

// What List reports about one certificate file.
struct CertInfo {
  std::string file;  // Base name, e.g. "connector-acme-web.crt" or "ca.crt".
  bool is_ca = false;
  std::string subject_cn;
  std::string uri_san;  // First URI SAN; "" when there is none.
  std::vector<std::string> dns_sans;
  std::vector<std::string> ip_sans;
  std::string serial_hex;
  // The validity window; both absl::InfinitePast() when the file did not parse.
  absl::Time not_before = absl::InfinitePast();
  absl::Time not_after = absl::InfinitePast();
  // Whether the certificate verifies against <dir>/ca.crt now (chain,
  // signature and validity window); when not, the reason in verify_error.
  bool verifies = false;
  std::string verify_error;
  // floor((not_after - now) / 24h): 0 during the last day, negative once
  // expired.
  int64_t days_left = 0;
};

// Every *.crt in `dir` (not .prev copies), sorted by file name, ca.crt
// included. A file that does not parse as a PEM certificate is reported with
// verifies=false and the parse error, not skipped. Errors: NOT_FOUND when
// `dir` does not exist; PERMISSION_DENIED / INTERNAL when it cannot be read.
// `now` is the time verification and days_left are computed at.
absl::StatusOr<std::vector<CertInfo>> List(const std::string& dir, absl::Time now);
absl::StatusOr<std::vector<CertInfo>> List(const std::string& dir);

// Re-issues <dir>/<file_stem>.crt with a fresh key, the same subject CN and
// SANs (URI, DNS, IP), signed by the current CA in `dir`, valid from now-1h
// for as long as the old certificate was valid. The old pair is copied to
// <stem>.crt.prev / <stem>.key.prev (overwriting older .prev files), then the
// new files are renamed over the old ones: each file flips atomically, the two
// one after the other. `file_stem` may also be given with a ".crt" suffix.
// Errors: INVALID_ARGUMENT for a stem with a '/' or the CA's own stem;
// NOT_FOUND when the certificate does not exist; FAILED_PRECONDITION when
// there is no usable CA.
absl::StatusOr<IssuedPaths> Rotate(const std::string& dir, const std::string& file_stem);

}  // namespace ferry::cli
