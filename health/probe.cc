#include "health/probe.h"

#include <utility>

#include "health/check_defaults.h"
#include "health/grpc_probe.h"
#include "health/http_probe.h"
#include "health/icmp_probe.h"
#include "health/tcp_probe.h"
#include "health/udp_probe.h"

namespace ferry::health {
namespace {

// A kind's probe behind the Probe interface.
template <typename Kind>
class ProbeOf final : public Probe {
 public:
  explicit ProbeOf(std::unique_ptr<Kind> kind) : kind_(std::move(kind)) {}

 private:
  std::unique_ptr<Kind> kind_;
};

template <typename Kind>
std::unique_ptr<Probe> Wrap(std::unique_ptr<Kind> kind) {
  return std::make_unique<ProbeOf<Kind>>(std::move(kind));
}

}  // namespace

std::unique_ptr<Probe> Probe::Start(dataplane::EventLoop& loop, const v1::HealthCheck& check,
                                    const dataplane::SocketAddress& target, const std::string& host,
                                    absl::Duration timeout, std::function<void(ProbeResult)> done) {
  const v1::HealthCheck full = WithDefaults(check);
  switch (full.kind_case()) {
    case v1::HealthCheck::kHttp:
      return Wrap(HttpProbe::Start(loop, full.http(), target, host, timeout, std::move(done)));
    case v1::HealthCheck::kUdp:
      return Wrap(UdpProbe::Start(loop, full.udp(), target, timeout, std::move(done)));
    case v1::HealthCheck::kIcmp:
      return Wrap(IcmpProbe::Start(loop, target, timeout, std::move(done)));
    case v1::HealthCheck::kGrpc:
      return Wrap(GrpcProbe::Start(loop, full.grpc(), target, host, timeout, std::move(done)));
    default:
      return Wrap(TcpProbe::Start(loop, target, timeout, std::move(done)));
  }
}

std::shared_ptr<void> Probe::KeepAlive(const v1::HealthCheck& check,
                                       const dataplane::SocketAddress& target,
                                       const std::string& host) {
  if (check.kind_case() == v1::HealthCheck::kGrpc) return GrpcProbe::ChannelFor(target, host);
  return nullptr;
}

}  // namespace ferry::health
