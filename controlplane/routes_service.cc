#include "controlplane/routes_service.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/mutex_lock.h"
#include "glog/logging.h"
#include "google/protobuf/util/time_util.h"

namespace ferry {
namespace {

class WatchRoutesReactor : public grpc::ServerBidiReactor<v1::RouteAck, v1::RouteSnapshot> {
 public:
  WatchRoutesReactor(grpc::CallbackServerContext* context, ServiceRegistry* registry,
                     const PeerAuthenticator* auth, IntermediateMetrics* metrics,
                     RoutesService* service)
      : registry_(registry), metrics_(metrics), service_(service) {
    absl::StatusOr<Peer> peer =
        auth->Authorize(*context, "Routes.WatchRoutes", {"relay", "connector"});
    if (!peer.ok()) {
      MutexLock lock(&mu_);
      finished_ = true;
      Finish(ToGrpcStatus(peer.status()));
      return;
    }
    peer_ = *std::move(peer);
    v1::Peer info;
    *info.mutable_identity() = peer_.id.ToProto();
    info.set_address(peer_.address);
    *info.mutable_connected_at() = google::protobuf::util::TimeUtil::GetCurrentTime();
    service_->AddWatcher(this, info);
    registered_ = true;
    // The first snapshot waits for the subscription, so that a client that
    // got it knows its data-plane addresses are recorded.
    StartRead(&ack_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      MutexLock lock(&mu_);
      FinishLocked(grpc::Status::OK);
      return;
    }
    if (subscription_ == 0) {
      // The first message is the subscription: it announces the client's
      // data-plane addresses, kept until the stream ends.
      absl::Status recorded = registry_->SetWatcherAddresses(
          peer_.id, StreamId(), ack_.udp_address(), ack_.stream_address());
      if (!recorded.ok()) {
        LOG(WARNING) << "Route watcher " << peer_.id.ToUri() << " refused: " << recorded;
        MutexLock lock(&mu_);
        FinishLocked(ToGrpcStatus(recorded));
        return;
      }
      addresses_recorded_ = true;
      subscription_ = registry_->Subscribe([this] { OnChange(); });
      OnChange();
    }
    if (ack_.error_detail().empty()) {
      if (!ack_.response_nonce().empty()) {
        if (std::optional<absl::Time> created = registry_->VersionTime(ack_.version())) {
          metrics_->route_push_latency().Observe(absl::ToDoubleSeconds(absl::Now() - *created));
        }
        registry_->RecordAck(peer_.id, ack_.version());
        service_->UpdateWatcherAck(this, ack_.version());
      }
    } else {
      metrics_->route_nacks().Increment();
      LOG(WARNING) << "Route snapshot NACKed by " << peer_.id.ToUri() << " (keeps version "
                   << ack_.version() << ", nonce " << ack_.response_nonce()
                   << "): " << ack_.error_detail();
    }
    StartRead(&ack_);
  }

  void OnWriteDone(bool ok) override {
    MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed"));
      return;
    }
    if (pending_) WriteLocked();
  }

  void OnDone() override {
    if (subscription_ != 0) registry_->Unsubscribe(subscription_);
    if (addresses_recorded_) registry_->ClearWatcherAddresses(peer_.id, StreamId());
    if (registered_) service_->RemoveWatcher(this);
    delete this;
  }

 private:
  // Tells this stream's address announcement from others of the same
  // identity; unique while the stream is open.
  uint64_t StreamId() const { return reinterpret_cast<uintptr_t>(this); }

  void OnChange() {
    MutexLock lock(&mu_);
    if (finished_) return;
    if (writing_) {
      pending_ = true;
      return;
    }
    WriteLocked();
  }

  void WriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    pending_ = false;
    if (finished_) return;
    snapshot_ = registry_->BuildSnapshot(peer_.id);
    // Subscribers are notified after the registry's lock is released, so a
    // notification can arrive after a write that already carried its version
    // (the changes coalesced): sending that version again would break "versions
    // only increase" for the client.
    if (snapshot_.version() <= last_sent_version_) return;
    last_sent_version_ = snapshot_.version();
    snapshot_.set_nonce(absl::StrCat(++sends_));
    writing_ = true;
    StartWrite(&snapshot_);
  }

  void FinishLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }

  ServiceRegistry* const registry_;
  IntermediateMetrics* const metrics_;
  RoutesService* const service_;
  Peer peer_;
  bool registered_ = false;
  // Set by the first OnReadDone; read by later reactions and OnDone, which
  // gRPC runs after it.
  bool addresses_recorded_ = false;
  uint64_t subscription_ = 0;
  v1::RouteAck ack_;

  absl::Mutex mu_;
  v1::RouteSnapshot snapshot_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool pending_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t sends_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t last_sent_version_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

grpc::ServerBidiReactor<v1::RouteAck, v1::RouteSnapshot>* RoutesService::WatchRoutes(
    grpc::CallbackServerContext* context) {
  return new WatchRoutesReactor(context, registry_, auth_, metrics_, this);
}

void RoutesService::AddWatcher(const void* stream, const v1::Peer& peer) {
  MutexLock lock(&mu_);
  watchers_[stream] = peer;
  if (peer.identity().role() == v1::ROLE_RELAY) metrics_->ConnectedPeers("relay").Increment();
}

void RoutesService::UpdateWatcherAck(const void* stream, uint64_t version) {
  MutexLock lock(&mu_);
  auto it = watchers_.find(stream);
  if (it != watchers_.end()) it->second.set_acked_route_version(version);
}

void RoutesService::RemoveWatcher(const void* stream) {
  MutexLock lock(&mu_);
  auto it = watchers_.find(stream);
  if (it == watchers_.end()) return;
  if (it->second.identity().role() == v1::ROLE_RELAY) metrics_->ConnectedPeers("relay").Decrement();
  watchers_.erase(it);
}

std::vector<v1::Peer> RoutesService::ListRelays() {
  MutexLock lock(&mu_);
  std::vector<v1::Peer> relays;
  for (const auto& [stream, peer] : watchers_) {
    if (peer.identity().role() == v1::ROLE_RELAY) relays.push_back(peer);
  }
  return relays;
}

}  // namespace ferry
