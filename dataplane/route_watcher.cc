#include "dataplane/route_watcher.h"

#include <utility>

#include "common/backoff.h"
#include "common/mutex_lock.h"
#include "glog/logging.h"

namespace ferry {

RouteWatcher::RouteWatcher(std::shared_ptr<grpc::Channel> channel, std::string node, ApplyFn apply)
    : channel_(std::move(channel)), node_(std::move(node)), apply_(std::move(apply)) {}

RouteWatcher::~RouteWatcher() { Stop(); }

void RouteWatcher::SetDataAddresses(std::string udp_address, std::string stream_address) {
  udp_address_ = std::move(udp_address);
  stream_address_ = std::move(stream_address);
}

void RouteWatcher::Start() {
  thread_ = std::thread([this] { Run(); });
}

void RouteWatcher::Stop() {
  {
    MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    if (context_ != nullptr) context_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
}

void RouteWatcher::Run() {
  Backoff backoff(absl::Milliseconds(200), absl::Seconds(10));
  for (;;) {
    const uint64_t before = applied_version_.load();
    WatchOnce();
    connected_ = false;
    if (applied_version_.load() != before) backoff.Reset();
    const absl::Duration delay = backoff.Next();
    MutexLock lock(&mu_);
    auto stopping = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
    if (AwaitWithTimeout(&mu_, absl::Condition(&stopping), delay)) return;
  }
}

void RouteWatcher::WatchOnce() {
  grpc::ClientContext context;
  {
    MutexLock lock(&mu_);
    if (stopping_) return;
    context_ = &context;
  }
  std::unique_ptr<v1::Routes::Stub> stub = v1::Routes::NewStub(channel_);
  auto stream = stub->WatchRoutes(&context);
  v1::RouteAck subscribe;
  subscribe.set_version(applied_version_.load());
  subscribe.set_node(node_);
  subscribe.set_udp_address(udp_address_);
  subscribe.set_stream_address(stream_address_);
  if (stream->Write(subscribe)) {
    v1::RouteSnapshot snapshot;
    while (stream->Read(&snapshot)) {
      connected_ = true;
      v1::RouteAck ack;
      ack.set_node(node_);
      ack.set_response_nonce(snapshot.nonce());
      if (snapshot.version() < applied_version_.load()) {
        ack.set_version(applied_version_.load());
        ack.set_error_detail("route version went backwards");
      } else if (absl::Status s = apply_(snapshot); s.ok()) {
        applied_version_ = snapshot.version();
        ack.set_version(snapshot.version());
        VLOG(1) << "Applied route version " << snapshot.version();
      } else {
        LOG(WARNING) << "Refused route version " << snapshot.version() << ": " << s;
        ack.set_version(applied_version_.load());
        ack.set_error_detail(std::string(s.message()));
      }
      if (!stream->Write(ack)) break;
    }
  }
  stream->WritesDone();
  const grpc::Status status = stream->Finish();
  {
    MutexLock lock(&mu_);
    context_ = nullptr;
    if (stopping_) return;
  }
  LOG(WARNING) << "Route stream ended (" << status.error_code() << ": " << status.error_message()
               << "); reconnecting";
}

}  // namespace ferry
