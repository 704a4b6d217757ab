#include "health/grpc_probe.h"

#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_status.h"
#include "common/mutex_lock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace ferry::health {

using ::grpc::health::v1::Health;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;

// One Check call, shared by the probe (loop thread) and gRPC's callback (a gRPC thread).
struct GrpcProbe::Call {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<Health::Stub> stub;
  grpc::ClientContext context;
  HealthCheckRequest request;
  HealthCheckResponse response;
  // The probe to finish; cleared by its destructor. Loop thread only.
  GrpcProbe* probe = nullptr;

  absl::Mutex mu;
  absl::CondVar cv;
  bool completed ABSL_GUARDED_BY(mu) = false;
};

std::shared_ptr<grpc::Channel> GrpcProbe::ChannelFor(const dataplane::SocketAddress& target,
                                                     const std::string& host) {
  static absl::Mutex mu;
  static auto* channels =
      new absl::flat_hash_map<std::string, std::weak_ptr<grpc::Channel>>();  // leaked on purpose
  const std::string uri = target.family() == AF_INET6 ? absl::StrCat("ipv6:", target.ToString())
                                                      : absl::StrCat("ipv4:", target.ToString());
  const std::string key = absl::StrCat(uri, "|", host);
  MutexLock lock(&mu);
  // Forget channels nobody holds any more, so the map stays as small as the set of targets.
  if (channels->size() > 64) {
    for (auto it = channels->begin(); it != channels->end();) {
      it->second.expired() ? channels->erase(it++) : void(++it);
    }
  }
  std::weak_ptr<grpc::Channel>& slot = (*channels)[key];
  if (std::shared_ptr<grpc::Channel> channel = slot.lock()) return channel;
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  // Not GRPC_ARG_MIN_RECONNECT_BACKOFF_MS: it is also the connect timeout, and a short one fails
  // handshakes of a slow (loaded) backend; each check's own deadline bounds the wait anyway.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  if (!host.empty()) args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, host);
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(uri, grpc::InsecureChannelCredentials(), args);
  slot = channel;
  return channel;
}

std::unique_ptr<GrpcProbe> GrpcProbe::Start(dataplane::EventLoop& loop,
                                            const v1::HealthCheck::Grpc& grpc,
                                            const dataplane::SocketAddress& target,
                                            const std::string& host, absl::Duration timeout,
                                            Done done) {
  std::unique_ptr<GrpcProbe> probe(new GrpcProbe(loop, timeout, std::move(done)));
  if (probe->finished()) return probe;
  auto call = std::make_shared<Call>();
  call->channel = ChannelFor(target, host);
  call->stub = Health::NewStub(call->channel);
  call->request.set_service(grpc.service());
  call->context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  call->probe = probe.get();
  probe->call_ = call;
  dataplane::EventLoop* const loop_ptr = &loop;
  // The callback holds the Call (not the probe); the probe's destructor waits for it, so `loop`
  // is still alive when it posts.
  call->stub->async()->Check(
      &call->context, &call->request, &call->response, [call, loop_ptr](grpc::Status status) {
        ProbeResult result;
        if (!status.ok()) {
          result = {false, absl::StrCat("grpc: ", FromGrpcStatus(status).ToString())};
        } else if (call->response.status() != HealthCheckResponse::SERVING) {
          result = {false, absl::StrCat("grpc status ", HealthCheckResponse::ServingStatus_Name(
                                                            call->response.status()))};
        } else {
          result = {true, "ok"};
        }
        loop_ptr->Post([call, result = std::move(result)]() mutable {
          if (call->probe != nullptr) call->probe->Finish(result.ok, std::move(result.detail));
        });
        MutexLock lock(&call->mu);
        call->completed = true;
        call->cv.SignalAll();
      });
  return probe;
}

GrpcProbe::~GrpcProbe() {
  if (call_ == nullptr) return;
  call_->probe = nullptr;
  call_->context.TryCancel();
  MutexLock lock(&call_->mu);
  while (!call_->completed) CondVarWait(&call_->cv, &call_->mu);
}

}  // namespace ferry::health
