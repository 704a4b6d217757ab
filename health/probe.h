// Probe: one health check attempt of one kind (tcp, http(s), udp, icmp, grpc) against one
// address, run asynchronously on an EventLoop.
//
// HealthMonitor starts a Probe per due check; the kinds live in their own files (tcp_probe.h,
// http_probe.h, ...) and share probe_core.h. Probe::Start picks the kind from the check's oneof.

#ifndef FERRY_HEALTH_PROBE_H_
#define FERRY_HEALTH_PROBE_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "dataplane/event_loop.h"
#include "dataplane/socket_address.h"
#include "ferry/v1/common.pb.h"
#include "health/probe_result.h"

namespace ferry::health {

class Probe {
 public:
  // Cancels the probe if it is still running: closes its fds (a gRPC call is cancelled and
  // waited for), and `done` is not called after. Loop thread only.
  virtual ~Probe() = default;

  // Starts one probe of check.kind() against `target` (ip:port; for icmp the port is ignored).
  // A check with no kind set is a tcp check; unset fields take the proto's defaults (see
  // check_defaults.h). `host` is the HTTP Host header (unless check.http.host is set) and the TLS
  // SNI / gRPC authority; empty means "use the target's IP". `done` runs exactly once on the loop
  // thread, never inside Start, and at the latest `timeout` after Start (a probe that runs out of
  // time fails with detail "timeout"). `done` may destroy the Probe. Never returns nullptr;
  // failures to even start (no socket, EACCES for icmp) are reported through `done`.
  // Loop thread only; `loop` must outlive the probe.
  static std::unique_ptr<Probe> Start(dataplane::EventLoop& loop, const v1::HealthCheck& check,
                                      const dataplane::SocketAddress& target,
                                      const std::string& host, absl::Duration timeout,
                                      std::function<void(ProbeResult)> done);

  // What a kind keeps between checks of one target, to be reused by later Starts while the
  // returned handle is held: the gRPC channel of a grpc check (one channel per address, so
  // every check does not pay a new connection). nullptr for kinds that keep nothing. Any thread.
  static std::shared_ptr<void> KeepAlive(const v1::HealthCheck& check,
                                         const dataplane::SocketAddress& target,
                                         const std::string& host);

 protected:
  Probe() = default;
};

}  // namespace ferry::health

#endif  // FERRY_HEALTH_PROBE_H_
