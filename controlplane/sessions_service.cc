#include "controlplane/sessions_service.h"

#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_status.h"
#include "common/mutex_lock.h"
#include "common/naming.h"
#include "glog/logging.h"

namespace ferry {
namespace {

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

class SignalWatchReactor;

// The hub's handle on a WatchSignals stream. The hub may hold it after the
// stream is done; Wake and End then do nothing.
class WatchLink : public SignalWatcher {
 public:
  explicit WatchLink(SignalWatchReactor* reactor) : reactor_(reactor) {}
  void Wake() override;
  void End(const absl::Status& status) override;
  void Detach() {
    MutexLock lock(&mu_);
    reactor_ = nullptr;
  }

 private:
  absl::Mutex mu_;
  SignalWatchReactor* reactor_ ABSL_GUARDED_BY(mu_);
};

// One WatchSignals stream: writes the session's mailbox, one message in
// flight at a time, taking the next from the hub when a write completes or
// the hub wakes it. Locks: the reactor's mu_ may be held while calling the
// hub (which never calls out with its own lock held).
class SignalWatchReactor : public grpc::ServerWriteReactor<v1::SignalMessage> {
 public:
  SignalWatchReactor(SignalHub* hub, const Peer& peer, uint64_t session_id)
      : hub_(hub), session_id_(session_id), link_(std::make_shared<WatchLink>(this)) {
    // Not under mu_: Watch may end another stream of this session.
    absl::StatusOr<uint64_t> watch = hub_->Watch(peer, session_id, link_);
    MutexLock lock(&mu_);
    if (!watch.ok()) {
      FinishLocked(watch.status());
      return;
    }
    watch_id_ = *watch;
    // Messages that waited before this watch (a Wake before watch_id_ was
    // set found nothing to take).
    if (!finished_) WriteNextLocked();
  }

  void Wake() {
    MutexLock lock(&mu_);
    if (!writing_ && !finished_) WriteNextLocked();
  }

  void End(const absl::Status& status) {
    MutexLock lock(&mu_);
    FinishLocked(status);
  }

  void OnWriteDone(bool ok) override {
    MutexLock lock(&mu_);
    writing_ = false;
    if (finish_pending_) {
      finish_pending_ = false;
      Finish(ToGrpcStatus(finish_status_));
      return;
    }
    if (!ok) {
      FinishLocked(absl::UnavailableError("write to the agent failed"));
      return;
    }
    if (!finished_) WriteNextLocked();
  }

  void OnCancel() override { End(absl::CancelledError("the agent cancelled WatchSignals")); }

  void OnDone() override {
    link_->Detach();
    uint64_t watch_id = 0;
    {
      MutexLock lock(&mu_);
      watch_id = watch_id_;
    }
    if (watch_id != 0) hub_->Unwatch(session_id_, watch_id);
    delete this;
  }

 private:
  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::optional<v1::SignalMessage> next = hub_->Take(session_id_, watch_id_);
    if (!next.has_value()) return;
    out_ = *std::move(next);
    writing_ = true;
    StartWrite(&out_);
  }

  void FinishLocked(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    if (writing_) {
      // Finish once the write in flight completes.
      finish_pending_ = true;
      finish_status_ = status;
      return;
    }
    Finish(ToGrpcStatus(status));
  }

  SignalHub* const hub_;
  const uint64_t session_id_;
  const std::shared_ptr<WatchLink> link_;

  absl::Mutex mu_;
  uint64_t watch_id_ ABSL_GUARDED_BY(mu_) = 0;
  v1::SignalMessage out_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_pending_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status finish_status_ ABSL_GUARDED_BY(mu_);
};

void WatchLink::Wake() {
  MutexLock lock(&mu_);
  if (reactor_ != nullptr) reactor_->Wake();
}

void WatchLink::End(const absl::Status& status) {
  MutexLock lock(&mu_);
  if (reactor_ != nullptr) reactor_->End(status);
}

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
                                                  const v1::SignalMessage* request,
                                                  v1::SignalAck* /*response*/) {
  absl::StatusOr<Peer> peer = auth_->Authorize(*context, "Sessions.Signal", {"agent", "connector"});
  if (!peer.ok()) return Done(context, peer.status());
  return Done(context, signals_->Signal(*peer, *request));
}

grpc::ServerWriteReactor<v1::SignalMessage>* SessionsService::WatchSignals(
    grpc::CallbackServerContext* context, const v1::WatchSignalsRequest* request) {
  absl::StatusOr<Peer> peer = auth_->Authorize(*context, "Sessions.WatchSignals", {"agent"});
  if (!peer.ok()) return new FinishedWriter(peer.status());
  return new SignalWatchReactor(signals_, *peer, request->session_id());
}

}  // namespace ferry
