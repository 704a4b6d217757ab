#include "controlplane/registry_service.h"

#include <deque>
#include <memory>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "common/grpc_status.h"
#include "common/mutex_lock.h"
#include "glog/logging.h"

namespace ferry {
namespace {

// Commands queued beyond this mean the connector stopped reading; its stream
// is ended rather than buffering without bound.
constexpr size_t kMaxQueuedCommands = 1024;

class ConnectorSessionReactor;

// The registry's handle on a stream. It can outlive the reactor; after the
// reactor is done, Send and Close do nothing.
class StreamLink : public ConnectorLink {
 public:
  explicit StreamLink(ConnectorSessionReactor* reactor) : reactor_(reactor) {}
  void Send(v1::ConnectorCommand command) override;
  void Close(const absl::Status& status) override;
  void Detach() {
    MutexLock lock(&mu_);
    reactor_ = nullptr;
  }

 private:
  absl::Mutex mu_;
  ConnectorSessionReactor* reactor_ ABSL_GUARDED_BY(mu_);
};

class ConnectorSessionReactor
    : public grpc::ServerBidiReactor<v1::ConnectorMessage, v1::ConnectorCommand> {
 public:
  ConnectorSessionReactor(grpc::CallbackServerContext* context, ServiceRegistry* registry,
                          const PeerAuthenticator* auth, SignalHub* signals)
      : registry_(registry), signals_(signals), link_(std::make_shared<StreamLink>(this)) {
    absl::StatusOr<Peer> peer =
        auth->Authorize(*context, "Registry.ConnectorSession", {"connector"});
    if (!peer.ok()) {
      FinishOnce(peer.status());
      return;
    }
    peer_ = *std::move(peer);
    StartRead(&in_);
  }

  void Enqueue(v1::ConnectorCommand command) {
    MutexLock lock(&mu_);
    if (finished_) return;
    if (queue_.size() >= kMaxQueuedCommands) {
      FinishLocked(absl::ResourceExhaustedError("connector is not reading its commands"));
      return;
    }
    command.set_command_id(next_command_id_++);
    queue_.push_back(std::move(command));
    if (!writing_) WriteNextLocked();
  }

  void FinishOnce(const absl::Status& status) {
    MutexLock lock(&mu_);
    FinishLocked(status);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The connector half-closed or went away.
      FinishOnce(absl::OkStatus());
      return;
    }
    absl::Status status = Handle(in_);
    if (!status.ok()) {
      FinishOnce(status);
      return;
    }
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      FinishLocked(absl::UnavailableError("write to connector failed"));
      return;
    }
    if (!queue_.empty()) {
      WriteNextLocked();
    } else if (finish_pending_) {
      finish_pending_ = false;
      Finish(ToGrpcStatus(finish_status_));
    }
  }

  void OnDone() override {
    link_->Detach();
    if (serial_ != 0) registry_->DetachConnector(peer_.id, serial_);
    delete this;
  }

 private:
  absl::Status Handle(const v1::ConnectorMessage& message) {
    switch (message.kind_case()) {
      case v1::ConnectorMessage::kHello: {
        if (serial_ == 0) {
          absl::StatusOr<uint64_t> serial =
              registry_->AttachConnector(peer_.id, peer_.address, message.hello(), link_);
          if (!serial.ok()) return serial.status();
          serial_ = *serial;
        } else if (absl::Status s = registry_->UpdateConnector(peer_.id, serial_, message.hello());
                   !s.ok()) {
          LOG(WARNING) << "Connector " << peer_.id.ToUri() << " sent a refused Hello: " << s;
          return s;
        }
        v1::ConnectorCommand welcome;
        *welcome.mutable_welcome() = registry_->WelcomeFor(peer_.id);
        Enqueue(std::move(welcome));
        return absl::OkStatus();
      }
      case v1::ConnectorMessage::kKeepalive: {
        if (serial_ == 0) break;
        registry_->Keepalive(peer_.id, serial_);
        v1::ConnectorCommand ack;
        *ack.mutable_keepalive_ack() = message.keepalive();
        Enqueue(std::move(ack));
        return absl::OkStatus();
      }
      case v1::ConnectorMessage::kHealth: {
        if (serial_ == 0) break;
        absl::Status s = registry_->ReportHealth(peer_.id, serial_, message.health());
        if (!s.ok()) LOG(WARNING) << "Health report from " << peer_.id.ToUri() << ": " << s;
        return absl::OkStatus();
      }
      case v1::ConnectorMessage::kConfigStatus:
        if (serial_ == 0) break;
        registry_->SetConfigStatus(peer_.id, serial_, message.config_status());
        return absl::OkStatus();
      case v1::ConnectorMessage::kCommandResult:
        if (serial_ == 0) break;
        if (!message.command_result().error().empty()) {
          LOG(WARNING) << "Connector " << peer_.id.ToUri() << " failed command "
                       << message.command_result().command_id() << ": "
                       << message.command_result().error();
        }
        return absl::OkStatus();
      case v1::ConnectorMessage::kSignal:
        if (serial_ == 0) break;
        // A refusal is the hub's to count and log; one bad message does not
        // end the connector's lease.
        signals_->Signal(peer_, message.signal()).IgnoreError();
        return absl::OkStatus();
      case v1::ConnectorMessage::KIND_NOT_SET:
        return absl::InvalidArgumentError("empty ConnectorMessage");
    }
    return absl::InvalidArgumentError("the first message on the stream must be a Hello");
  }

  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    out_ = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    StartWrite(&out_);
  }

  void FinishLocked(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    queue_.clear();
    if (writing_) {
      // Finish once the write in flight completes.
      finish_pending_ = true;
      finish_status_ = status;
      return;
    }
    Finish(ToGrpcStatus(status));
  }

  ServiceRegistry* const registry_;
  SignalHub* const signals_;
  const std::shared_ptr<StreamLink> link_;
  Peer peer_;
  uint64_t serial_ = 0;  // Only touched by the read path and OnDone.
  v1::ConnectorMessage in_;

  absl::Mutex mu_;
  std::deque<v1::ConnectorCommand> queue_ ABSL_GUARDED_BY(mu_);
  v1::ConnectorCommand out_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_pending_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status finish_status_ ABSL_GUARDED_BY(mu_);
  uint64_t next_command_id_ ABSL_GUARDED_BY(mu_) = 1;
};

void StreamLink::Send(v1::ConnectorCommand command) {
  MutexLock lock(&mu_);
  if (reactor_ != nullptr) reactor_->Enqueue(std::move(command));
}

void StreamLink::Close(const absl::Status& status) {
  MutexLock lock(&mu_);
  if (reactor_ != nullptr) reactor_->FinishOnce(status);
}

}  // namespace

grpc::ServerBidiReactor<v1::ConnectorMessage, v1::ConnectorCommand>*
RegistryService::ConnectorSession(grpc::CallbackServerContext* context) {
  return new ConnectorSessionReactor(context, registry_, auth_, signals_);
}

}  // namespace ferry
