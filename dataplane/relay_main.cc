// ferry-relay: relays frames between agent and connector sessions. Per-core
// workers (SO_REUSEPORT, CBPF-steered by flow id) forward UDP frames and
// stream transports; the routes and session keys come from the Intermediate
// over WatchRoutes, to which the relay announces its data-plane addresses.
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "common/admin_http_server.h"
#include "common/intermediate_channel.h"
#include "common/listen_address.h"
#include "common/metrics.h"
#include "common/process.h"
#include "dataplane/dataplane_metrics.h"
#include "dataplane/dataplane_process.h"
#include "dataplane/relay_worker.h"
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

constexpr char kDefaultListen[] = "127.0.0.1:7480";

int Run() {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = DialIntermediate(
      absl::GetFlag(FLAGS_intermediate),
      TlsFiles{absl::GetFlag(FLAGS_ca_cert), absl::GetFlag(FLAGS_cert), absl::GetFlag(FLAGS_key)});
  if (!channel.ok()) {
    LOG(ERROR) << channel.status();
    return 2;
  }
  absl::StatusOr<std::unique_ptr<dataplane::WorkerGroup>> group = dataplane::StartWorkersFromFlags(
      dataplane::DataplaneRole::kRelay, kDefaultListen,
      [](dataplane::WorkerOptions options, UniqueFd udp, UniqueFd listener,
         dataplane::WorkerSnapshots<dataplane::RouteTable>* routes) {
        return std::make_unique<dataplane::RelayWorker>(options, std::move(udp),
                                                        std::move(listener), routes);
      });
  if (!group.ok()) {
    LOG(ERROR) << "Cannot start the relay's workers: " << group.status();
    return 1;
  }
  const std::string listen =
      absl::GetFlag(FLAGS_listen).empty() ? kDefaultListen : absl::GetFlag(FLAGS_listen);
  const dataplane::DataplaneEndpoints endpoints = dataplane::AdvertisedEndpoints(listen, **group);

  auto registry = std::make_shared<prometheus::Registry>();
  dataplane::DataplaneMetrics metrics(*registry, "ferry_relay");
  prometheus::Gauge& services_gauge =
      AddGaugeFamily(*registry, "ferry_relay_routed_services", "Services in the routes in use.")
          .Add({});
  prometheus::Gauge& sessions_gauge =
      AddGaugeFamily(*registry, "ferry_relay_sessions", "Sessions in the routes in use.").Add({});

  RouteWatcher watcher(*channel, absl::GetFlag(FLAGS_name), [&](const v1::RouteSnapshot& snapshot) {
    if (absl::Status s = (*group)->ApplyRoutes(snapshot); !s.ok()) return s;
    metrics.SetServiceNames(dataplane::ServiceNames(snapshot));
    services_gauge.Set(snapshot.services_size());
    sessions_gauge.Set(snapshot.sessions_size());
    LOG(INFO) << "Route version " << snapshot.version() << ": " << snapshot.services_size()
              << " services, " << snapshot.sessions_size() << " sessions";
    return absl::OkStatus();
  });
  watcher.SetDataAddresses(endpoints.udp_address, endpoints.stream_address);

  AdminHttpServer admin;
  dataplane::ServeDataplaneMetrics(admin, registry, &metrics, group->get());
  admin.ServeHealth([&watcher] { return watcher.connected(); });
  const std::string admin_listen = absl::GetFlag(FLAGS_admin_listen);
  if (absl::Status s = admin.Start(admin_listen); !s.ok()) {
    LOG(ERROR) << "Cannot start the admin HTTP server: " << s;
    return 1;
  }
  watcher.Start();
  const std::string admin_bound = BoundAddress(admin_listen, admin.port());
  LOG(INFO) << "Relay with " << (*group)->size() << " workers: frames on udp "
            << endpoints.udp_address << ", stream transports on tcp " << endpoints.stream_address
            << "; routes from " << absl::GetFlag(FLAGS_intermediate) << "; admin HTTP on "
            << admin_bound;
  if (absl::Status s = WriteReadyFile({{"admin_address", admin_bound},
                                       {"udp_address", endpoints.udp_address},
                                       {"stream_address", endpoints.stream_address}});
      !s.ok()) {
    LOG(ERROR) << s;
  }

  WaitForShutdownSignal();
  watcher.Stop();
  admin.Stop();
  (*group)->Stop();
  LOG(INFO) << "Relay stopped";
  return 0;
}

}  // namespace
}  // namespace ferry

int main(int argc, char** argv) {
  ferry::InitProcess(argc, argv,
                     "ferry-relay: relays data-plane frames between agents and connectors.\n"
                     "  ferry-relay --intermediate 127.0.0.1:7443 --ca_cert ca.crt --cert "
                     "relay.crt --key relay.key --listen 0.0.0.0:7480");
  return ferry::Run();
}
