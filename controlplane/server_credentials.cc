#include "controlplane/server_credentials.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_certificate_verifier.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace ferry {
namespace {

struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Deleter>;

// Every certificate in a PEM bundle, in order.
std::vector<X509Ptr> ParsePemBundle(absl::string_view pem) {
  std::vector<X509Ptr> certs;
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return certs;
  while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    certs.emplace_back(cert);
  }
  ERR_clear_error();  // The loop ends on a "no start line" error.
  BIO_free(bio);
  return certs;
}

std::string Describe(X509* cert) {
  char subject[256] = {0};
  X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
  return subject;
}

const char* ReasonFor(int verify_error) {
  switch (verify_error) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return "certificate_expired";
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return "certificate_not_yet_valid";
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
      return "unknown_ca";
    default:
      return "certificate_invalid";
  }
}

absl::Status Refuse(absl::string_view reason, absl::string_view detail) {
  return absl::UnauthenticatedError(absl::StrCat(reason, ": ", detail));
}

// The gRPC hook: checks synchronously and reports refusals.
class PeerCertificateVerifier : public grpc::experimental::ExternalCertificateVerifier {
 public:
  PeerCertificateVerifier(std::shared_ptr<ClientCertificateChecker> checker,
                          HandshakeRefusalCallback on_refusal)
      : checker_(std::move(checker)), on_refusal_(std::move(on_refusal)) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)> /*callback*/, grpc::Status* sync_status) override {
    const grpc::string_ref leaf = request->peer_cert();
    const grpc::string_ref chain = request->peer_cert_full_chain();
    const absl::Status status = checker_->Check(absl::string_view(leaf.data(), leaf.size()),
                                                absl::string_view(chain.data(), chain.size()));
    if (status.ok()) {
      *sync_status = grpc::Status::OK;
      return true;
    }
    const absl::string_view message = status.message();
    const size_t colon = message.find(": ");
    if (on_refusal_) {
      on_refusal_(message.substr(0, colon),
                  colon == absl::string_view::npos ? message : message.substr(colon + 2));
    }
    *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::string(message));
    return true;  // Done synchronously.
  }

  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {}

 private:
  std::shared_ptr<ClientCertificateChecker> checker_;
  HandshakeRefusalCallback on_refusal_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<ClientCertificateChecker>> ClientCertificateChecker::Create(
    const std::string& ca_pem) {
  std::vector<X509Ptr> cas = ParsePemBundle(ca_pem);
  if (cas.empty()) return absl::InvalidArgumentError("the CA file holds no PEM certificate");
  X509_STORE* store = X509_STORE_new();
  for (const X509Ptr& ca : cas) X509_STORE_add_cert(store, ca.get());
  return std::shared_ptr<ClientCertificateChecker>(new ClientCertificateChecker(store));
}

ClientCertificateChecker::~ClientCertificateChecker() { X509_STORE_free(store_); }

absl::Status ClientCertificateChecker::Check(absl::string_view leaf_pem,
                                             absl::string_view chain_pem) const {
  std::vector<X509Ptr> leaf = ParsePemBundle(leaf_pem);
  if (leaf.empty()) {
    return Refuse("no_client_certificate", "the peer presented no client certificate");
  }
  std::vector<X509Ptr> chain = ParsePemBundle(chain_pem);
  STACK_OF(X509)* untrusted = sk_X509_new_null();
  for (const X509Ptr& cert : chain) {
    if (X509_cmp(cert.get(), leaf[0].get()) != 0) sk_X509_push(untrusted, cert.get());
  }
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  absl::Status result;
  if (ctx == nullptr || X509_STORE_CTX_init(ctx, store_, leaf[0].get(), untrusted) != 1) {
    result = Refuse("certificate_invalid", "could not set up certificate verification");
  } else {
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
    if (X509_verify_cert(ctx) != 1) {
      const int error = X509_STORE_CTX_get_error(ctx);
      result = Refuse(ReasonFor(error), absl::StrCat("certificate ", Describe(leaf[0].get()), ": ",
                                                     X509_verify_cert_error_string(error)));
    }
  }
  X509_STORE_CTX_free(ctx);
  sk_X509_free(untrusted);
  ERR_clear_error();
  return result;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& files, HandshakeRefusalCallback on_refusal) {
  if (files.ca_cert.empty() || files.cert.empty() || files.key.empty()) {
    return absl::InvalidArgumentError(
        "mutual TLS needs --ca_cert, --cert and --key (or run with --insecure_dev_mode on "
        "loopback)");
  }
  // Read once up front so that a bad path is a clear start-up error.
  absl::StatusOr<std::string> ca = ReadFileToString(files.ca_cert);
  if (!ca.ok()) return ca.status();
  for (const std::string* path : {&files.cert, &files.key}) {
    absl::StatusOr<std::string> content = ReadFileToString(*path);
    if (!content.ok()) return content.status();
  }
  absl::StatusOr<std::shared_ptr<ClientCertificateChecker>> checker =
      ClientCertificateChecker::Create(*ca);
  if (!checker.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(files.ca_cert, ": ", checker.status().message()));
  }
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      files.key, files.cert, files.ca_cert, /*refresh_interval_sec=*/60);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  // The TLS library asks for a certificate; PeerCertificateVerifier decides.
  options.set_cert_request_type(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_BUT_DONT_VERIFY);
  options.set_certificate_verifier(
      grpc::experimental::ExternalCertificateVerifier::Create<PeerCertificateVerifier>(
          *std::move(checker), std::move(on_refusal)));
  return grpc::experimental::TlsServerCredentials(options);
}

}  // namespace ferry
