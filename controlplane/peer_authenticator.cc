#include "controlplane/peer_authenticator.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "glog/logging.h"

namespace ferry {
namespace {

// URI SANs of the PEM leaf certificate in the auth context.
std::vector<std::string> UriSans(const grpc::AuthContext& auth) {
  std::vector<std::string> uris;
  for (const grpc::string_ref& pem : auth.FindPropertyValues("x509_pem_cert")) {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    X509* cert = bio ? PEM_read_bio_X509(bio, nullptr, nullptr, nullptr) : nullptr;
    BIO_free(bio);
    if (cert == nullptr) continue;
    auto* names =
        static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
      if (name->type != GEN_URI) continue;
      const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
      uris.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                        ASN1_STRING_length(uri));
    }
    GENERAL_NAMES_free(names);
    X509_free(cert);
  }
  ERR_clear_error();
  return uris;
}

}  // namespace

PeerAuthenticator::PeerAuthenticator(std::string trust_domain, std::string operator_tenant,
                                     bool insecure_dev_mode, IntermediateMetrics* metrics)
    : trust_domain_(std::move(trust_domain)),
      operator_tenant_(std::move(operator_tenant)),
      insecure_dev_mode_(insecure_dev_mode),
      metrics_(metrics) {}

absl::Status PeerAuthenticator::Refuse(absl::StatusCode code, absl::string_view reason,
                                       absl::string_view peer, absl::string_view message) const {
  metrics_->CountAuthFailure(reason);
  LOG(WARNING) << "Refused " << peer << " (" << reason << "): " << message;
  return absl::Status(code, message);
}

absl::StatusOr<Peer> PeerAuthenticator::Authorize(
    const grpc::ServerContextBase& context, absl::string_view method,
    std::initializer_list<absl::string_view> roles) const {
  Peer peer;
  peer.address = context.peer();
  std::vector<std::string> uris;
  if (insecure_dev_mode_) {
    auto it = context.client_metadata().find(kDevIdentityHeader);
    if (it != context.client_metadata().end()) {
      uris.emplace_back(it->second.data(), it->second.size());
    }
  } else if (std::shared_ptr<const grpc::AuthContext> auth = context.auth_context()) {
    uris = UriSans(*auth);
  }
  if (uris.empty()) {
    return Refuse(absl::StatusCode::kUnauthenticated, "no_uri_san", peer.address,
                  absl::StrCat("the client certificate has no URI SAN; issue one with a SPIFFE ID "
                               "(ferryctl pki issue --tenant T --role R --name N)"));
  }
  if (uris.size() > 1) {
    return Refuse(absl::StatusCode::kUnauthenticated, "malformed_uri_san", peer.address,
                  absl::StrCat("the client certificate has ", uris.size(),
                               " URI SANs; exactly one SPIFFE ID is allowed"));
  }
  absl::StatusOr<SpiffeId> id = ParseSpiffeId(uris[0]);
  if (!id.ok()) {
    return Refuse(absl::StatusCode::kUnauthenticated, "malformed_uri_san", peer.address,
                  id.status().message());
  }
  const std::string who = absl::StrCat(peer.address, " as ", id->ToUri());
  if (id->trust_domain != trust_domain_) {
    return Refuse(absl::StatusCode::kUnauthenticated, "wrong_trust_domain", who,
                  absl::StrCat("trust domain \"", id->trust_domain, "\" is not this fabric's (\"",
                               trust_domain_, "\")"));
  }
  bool allowed = false;
  for (absl::string_view role : roles) allowed = allowed || role == id->role;
  if (!allowed) {
    return Refuse(absl::StatusCode::kPermissionDenied, "wrong_role", who,
                  absl::StrCat(method, " is for the ", absl::StrJoin(roles, " or "),
                               " role; the caller's role is ", id->role));
  }
  peer.id = *std::move(id);
  return peer;
}

bool PeerAuthenticator::IsOperator(const Peer& peer) const {
  return !operator_tenant_.empty() && peer.id.role == "admin" && peer.id.tenant == operator_tenant_;
}

absl::Status PeerAuthenticator::CheckTenant(const Peer& peer, absl::string_view tenant,
                                            absl::string_view what) const {
  if (peer.id.tenant == tenant || IsOperator(peer)) return absl::OkStatus();
  return Refuse(absl::StatusCode::kPermissionDenied, "other_tenant",
                absl::StrCat(peer.address, " as ", peer.id.ToUri()),
                absl::StrCat("a caller of tenant \"", peer.id.tenant, "\" may not act on ", what,
                             " of tenant \"", tenant, "\""));
}

}  // namespace ferry
