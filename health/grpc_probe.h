// GrpcProbe: the grpc health check — grpc.health.v1.Health/Check through gRPC's callback API, so
// the loop thread never blocks; the result is posted back to the loop. Healthy on SERVING.
//
// Channels are shared per (address, authority) while someone holds them (HealthMonitor holds one
// per grpc target through Probe::KeepAlive), so checks reuse one connection.

#ifndef FERRY_HEALTH_GRPC_PROBE_H_
#define FERRY_HEALTH_GRPC_PROBE_H_

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "dataplane/event_loop.h"
#include "dataplane/socket_address.h"
#include "ferry/v1/common.pb.h"
#include "grpcpp/channel.h"
#include "health/probe_core.h"

namespace ferry::health {

class GrpcProbe final : public ProbeCore {
 public:
  // The insecure channel to `target` with authority `host` (the IP when empty): the one already
  // in use when any holder keeps it, else a new one. Reconnects back off at most 1s, so a
  // restarted backend is seen again promptly. Any thread.
  static std::shared_ptr<grpc::Channel> ChannelFor(const dataplane::SocketAddress& target,
                                                   const std::string& host);

  // Calls Check(service) on `target` with deadline `timeout`. "ok" on SERVING; "grpc status
  // NOT_SERVING" (or another serving status); "grpc: <CODE>: <message>" when the RPC fails;
  // "timeout" after `timeout`. Same rules as Probe::Start.
  static std::unique_ptr<GrpcProbe> Start(dataplane::EventLoop& loop,
                                          const v1::HealthCheck::Grpc& grpc,
                                          const dataplane::SocketAddress& target,
                                          const std::string& host, absl::Duration timeout,
                                          Done done);

  // Cancels a call still under way and waits for gRPC to finish it (promptly after the
  // cancel), so no callback outlives the probe or its loop.
  ~GrpcProbe() override;

 private:
  struct Call;
  using ProbeCore::ProbeCore;
  void OnSocketEvents(uint32_t /*epoll_events*/) override {}  // no socket of its own

  std::shared_ptr<Call> call_;
};

}  // namespace ferry::health

#endif  // FERRY_HEALTH_GRPC_PROBE_H_
