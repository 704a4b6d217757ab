#include "controlplane/sessions_service.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/grpc_status.h"
#include "common/naming.h"
#include "glog/logging.h"

namespace ferry {
namespace {

constexpr char kSignalingAbsent[] =
    " is not served by this version of the Intermediate: direct paths are not set up yet, so "
    "every session takes the relay path (Sessions.OpenSession)";

grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* context, const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// A server-streaming call that ends at once with a status.
class FinishedWriter : public grpc::ServerWriteReactor<v1::SignalMessage> {
 public:
  explicit FinishedWriter(const absl::Status& status) { Finish(ToGrpcStatus(status)); }
  void OnDone() override { delete this; }
};

// The label of ferry_sessions_refused_total for a refusal, or null for codes
// that are not counted there (a malformed request, an internal failure).
const char* RefusalReason(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kNotFound:
      return "not_found";
    case absl::StatusCode::kPermissionDenied:
      return "permission_denied";
    case absl::StatusCode::kUnavailable:
      return "unavailable";
    case absl::StatusCode::kResourceExhausted:
      return "resource_exhausted";
    default:
      return nullptr;
  }
}

}  // namespace

absl::StatusOr<ServiceRef> ParseServiceRef(const std::string& text) {
  if (text.empty()) {
    return absl::InvalidArgumentError(
        "service: is empty; name a service of your tenant, e.g. \"ollama-api\"");
  }
  std::vector<std::string> parts = absl::StrSplit(text, '.');
  if (parts.size() > 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("service: \"", text, "\" has ", parts.size() - 1,
                     " dots; use \"<service>\" or \"<service>.<tenant>\""));
  }
  ServiceRef ref;
  ref.service = parts[0];
  if (absl::Status s = ValidateName(NameKind::kService, ref.service); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("service: ", s.message()));
  }
  if (parts.size() == 2) {
    ref.tenant = parts[1];
    if (absl::Status s = ValidateName(NameKind::kTenant, ref.tenant); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("service: ", s.message()));
    }
  }
  return ref;
}

absl::Status SessionsService::Open(const grpc::CallbackServerContext& context,
                                   const v1::OpenSessionRequest& request,
                                   v1::OpenSessionResponse* response) {
  absl::StatusOr<Peer> peer = auth_->Authorize(context, "Sessions.OpenSession", {"agent"});
  if (!peer.ok()) return peer.status();
  absl::StatusOr<ServiceRef> ref = ParseServiceRef(request.service());
  if (!ref.ok()) return ref.status();
  if (!ref->tenant.empty() && ref->tenant != peer->id.tenant) {
    metrics_->CountAuthFailure("other_tenant");
    LOG(WARNING) << "Refused OpenSession of " << peer->address << " as " << peer->id.ToUri()
                 << " for service " << ref->service << " of tenant " << ref->tenant;
    return absl::PermissionDeniedError(
        absl::StrCat("service \"", ref->service, "\" belongs to tenant \"", ref->tenant,
                     "\"; cross-tenant grants are not supported, so an agent of tenant \"",
                     peer->id.tenant, "\" may only open sessions to its own tenant's services"));
  }
  absl::StatusOr<v1::OpenSessionResponse> opened = registry_->OpenSession(peer->id, ref->service);
  if (!opened.ok()) return opened.status();
  *response = *std::move(opened);
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* SessionsService::OpenSession(grpc::CallbackServerContext* context,
                                                       const v1::OpenSessionRequest* request,
                                                       v1::OpenSessionResponse* response) {
  const absl::Status status = Open(*context, *request, response);
  if (status.ok()) {
    metrics_->sessions_opened().Increment();
  } else if (const char* reason = RefusalReason(status.code())) {
    metrics_->CountSessionRefused(reason);
  }
  return Done(context, status);
}

grpc::ServerUnaryReactor* SessionsService::Signal(grpc::CallbackServerContext* context,
                                                  const v1::SignalMessage* /*request*/,
                                                  v1::SignalAck* /*response*/) {
  absl::StatusOr<Peer> peer = auth_->Authorize(*context, "Sessions.Signal", {"agent", "connector"});
  if (!peer.ok()) return Done(context, peer.status());
  return Done(context, absl::UnimplementedError(absl::StrCat("Sessions.Signal", kSignalingAbsent)));
}

grpc::ServerWriteReactor<v1::SignalMessage>* SessionsService::WatchSignals(
    grpc::CallbackServerContext* context, const v1::WatchSignalsRequest* /*request*/) {
  absl::StatusOr<Peer> peer = auth_->Authorize(*context, "Sessions.WatchSignals", {"agent"});
  if (!peer.ok()) return new FinishedWriter(peer.status());
  return new FinishedWriter(
      absl::UnimplementedError(absl::StrCat("Sessions.WatchSignals", kSignalingAbsent)));
}

}  // namespace ferry
