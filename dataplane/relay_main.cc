// ferry-relay: the relay's control-plane half. It keeps a WatchRoutes stream
// to the Intermediate (ACKing each snapshot it accepts) and exports what it
// holds on /metrics. Frame forwarding between agent and connector sessions is
// not in this version: the relay takes no data-plane traffic yet.
#include <atomic>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "common/admin_http_server.h"
#include "common/intermediate_channel.h"
#include "common/listen_address.h"
#include "common/metrics.h"
#include "common/process.h"
#include "dataplane/route_watcher.h"
#include "glog/logging.h"

ABSL_FLAG(std::string, intermediate, "127.0.0.1:7443", "Intermediate gRPC address.");
ABSL_FLAG(std::string, ca_cert, "", "PEM CA certificate of the fabric.");
ABSL_FLAG(std::string, cert, "", "PEM certificate of this relay (role relay).");
ABSL_FLAG(std::string, key, "", "PEM private key of this relay.");
ABSL_FLAG(std::string, admin_listen, "127.0.0.1:7481", "Admin HTTP address for /metrics.");
ABSL_FLAG(std::string, name, "relay", "Display name sent with route ACKs.");

namespace ferry {
namespace {

int Run() {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = DialIntermediate(
      absl::GetFlag(FLAGS_intermediate),
      TlsFiles{absl::GetFlag(FLAGS_ca_cert), absl::GetFlag(FLAGS_cert), absl::GetFlag(FLAGS_key)});
  if (!channel.ok()) {
    LOG(ERROR) << channel.status();
    return 2;
  }
  auto registry = std::make_shared<prometheus::Registry>();
  prometheus::Gauge& version_gauge =
      AddGaugeFamily(*registry, "ferry_relay_route_version", "Route version in use.").Add({});
  prometheus::Gauge& services_gauge =
      AddGaugeFamily(*registry, "ferry_relay_routed_services", "Services in the routes in use.")
          .Add({});

  RouteWatcher watcher(*channel, absl::GetFlag(FLAGS_name), [&](const v1::RouteSnapshot& snapshot) {
    version_gauge.Set(static_cast<double>(snapshot.version()));
    services_gauge.Set(snapshot.services_size());
    LOG(INFO) << "Route version " << snapshot.version() << ": " << snapshot.services_size()
              << " services";
    return absl::OkStatus();
  });
  AdminHttpServer admin;
  admin.ServeMetrics(registry);
  admin.ServeHealth([&watcher] { return watcher.connected(); });
  const std::string admin_listen = absl::GetFlag(FLAGS_admin_listen);
  if (absl::Status s = admin.Start(admin_listen); !s.ok()) {
    LOG(ERROR) << "Cannot start the admin HTTP server: " << s;
    return 1;
  }
  watcher.Start();
  const std::string admin_bound = BoundAddress(admin_listen, admin.port());
  LOG(INFO) << "Relay watching routes from " << absl::GetFlag(FLAGS_intermediate)
            << "; admin HTTP on " << admin_bound;
  if (absl::Status s = WriteReadyFile({{"admin_address", admin_bound}}); !s.ok()) LOG(ERROR) << s;

  WaitForShutdownSignal();
  watcher.Stop();
  admin.Stop();
  LOG(INFO) << "Relay stopped";
  return 0;
}

}  // namespace
}  // namespace ferry

int main(int argc, char** argv) {
  ferry::InitProcess(argc, argv,
                     "ferry-relay: watches routes from the Intermediate.\n"
                     "  ferry-relay --intermediate 127.0.0.1:7443 --ca_cert ca.crt --cert "
                     "relay.crt --key relay.key");
  return ferry::Run();
}
