// Mutual-TLS server credentials for the Intermediate.
//
// The TLS layer requests a client certificate and this file's verifier checks
// it with OpenSSL against the configured CA (chain, validity, client-auth
// purpose). Doing the check here rather than inside the TLS library lets every
// refusal be counted and logged with its reason; the handshake still fails, so
// a refused peer never reaches an RPC. Identity (the SPIFFE URI SAN) is checked
// per RPC by PeerAuthenticator, which can answer UNAUTHENTICATED with a reason.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/tls_files.h"
#include "grpcpp/security/server_credentials.h"

struct x509_store_st;  // OpenSSL's X509_STORE.

namespace ferry {

// Called once per refused handshake with a stable reason label
// (no_client_certificate, unknown_ca, certificate_expired,
// certificate_not_yet_valid, certificate_invalid) and a human-readable detail
// naming the certificate. Runs on a gRPC thread; must not block.
using HandshakeRefusalCallback =
    std::function<void(absl::string_view reason, absl::string_view detail)>;

// Verifies a PEM client certificate (leaf first, optional intermediates after)
// against the PEM CA bundle. Returns OK or UNAUTHENTICATED whose message starts
// with the reason label followed by ": " and the detail. Thread-safe.
class ClientCertificateChecker {
 public:
  // INVALID_ARGUMENT when ca_pem holds no certificate.
  static absl::StatusOr<std::shared_ptr<ClientCertificateChecker>> Create(
      const std::string& ca_pem);
  ~ClientCertificateChecker();

  absl::Status Check(absl::string_view leaf_pem, absl::string_view chain_pem) const;

 private:
  explicit ClientCertificateChecker(::x509_store_st* store) : store_(store) {}
  ::x509_store_st* store_;  // X509_STORE, owned.
};

// Builds the server credentials: presents files.cert/key, trusts files.ca_cert,
// requires a verified client certificate. The certificate files are re-read
// every 60 seconds so a rotated certificate takes effect without a restart.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& files, HandshakeRefusalCallback on_refusal);

}  // namespace ferry
