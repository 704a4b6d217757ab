// A throw-away dev PKI for integration tests: a CA in a temp directory (made
// with //cli:dev_pki, the same code as `ferryctl pki`) and one-call helpers for
// the certificates a test needs: good ones for any (tenant, role, name), the
// Intermediate's server certificate, and the bad ones every refusal test
// needs (expired, signed by another CA, no URI SAN, a malformed URI SAN,
// another trust domain).
//
// Each bad kind is issued into its own sub-directory (holding a copy of the
// CA), so a bad certificate never replaces a good one of the same identity.
// Not thread-safe: use from the test's main thread.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "common/tls_files.h"

namespace ferry::harness {

class DevPki {
 public:
  // Creates a CA for `trust_domain` in a fresh directory under TEST_TMPDIR.
  static absl::StatusOr<DevPki> Create(const std::string& trust_domain = "ferry.local");

  const std::string& dir() const { return dir_; }
  const std::string& trust_domain() const { return trust_domain_; }
  // PEM CA certificate path (every party's trust anchor).
  std::string ca_cert() const;

  // A valid certificate with URI SAN spiffe://<trust_domain>/tenant/T/<role>/N.
  // Issuing the same identity twice returns the existing files. The result's
  // ca_cert is this CA. Errors from cli::Issue (INVALID_ARGUMENT for a bad
  // name or role).
  absl::StatusOr<TlsFiles> Issue(const std::string& tenant, const std::string& role,
                                 const std::string& name);
  // The Intermediate's server certificate (role intermediate, tenant "ops",
  // DNS SAN localhost and IP SAN 127.0.0.1).
  absl::StatusOr<TlsFiles> IssueIntermediate();

  // --- Bad certificates (cert/key bad; ca_cert is still this CA, so the
  // client can verify the server and only the client side is wrong) ---

  // Valid from 48h ago to 24h ago.
  absl::StatusOr<TlsFiles> IssueExpired(const std::string& tenant, const std::string& role,
                                        const std::string& name);
  // Signed by a second CA (same trust domain) that the Intermediate does not trust.
  absl::StatusOr<TlsFiles> IssueFromOtherCa(const std::string& tenant, const std::string& role,
                                            const std::string& name);
  // CA-valid, without any URI SAN.
  absl::StatusOr<TlsFiles> IssueWithoutUriSan(const std::string& name);
  // CA-valid, with exactly `uri` as its URI SAN (e.g. "spiffe://ferry.local/x").
  absl::StatusOr<TlsFiles> IssueWithUriSan(const std::string& name, const std::string& uri);
  // CA-valid, with a well-formed SPIFFE ID of `trust_domain` instead of this CA's.
  absl::StatusOr<TlsFiles> IssueForTrustDomain(const std::string& trust_domain,
                                               const std::string& tenant, const std::string& role,
                                               const std::string& name);

 private:
  DevPki(std::string dir, std::string trust_domain)
      : dir_(std::move(dir)), trust_domain_(std::move(trust_domain)) {}
  // <dir>/<kind>, holding a copy of this CA (made on first use).
  absl::StatusOr<std::string> VariantDir(const std::string& kind);

  std::string dir_;
  std::string trust_domain_;
};

// One DevPki (trust domain ferry.local) for the whole test process, made on
// first use, so a test suite does not mint a CA per test. Thread-safe. Returns
// Create's error, every time, if that failed. Never freed (a process-lifetime
// fixture).
absl::StatusOr<DevPki*> SharedDevPki();

}  // namespace ferry::harness
