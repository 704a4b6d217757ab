// ferry-connector: serves many services next to their backends. It loads its
// services from a YAML config file, keeps its session stream to the
// Intermediate (the stream is its lease: Hello with the services,
// keepalives), reloads the file on SIGHUP or when it changes (an invalid file
// is refused whole and the last good config stays live; the file is also
// watched with inotify), and watches its own routes and session keys. Per-core
// workers take frames from relays and forward each flow to a healthy backend
// of its service (UDP, TCP over stream transports, ICMP echo). Backends are
// resolved (dns://, srv:// with c-ares) and health-checked here
// (dataplane/connector_backends.h): the connector routes by its own view at
// once and reports it to the Intermediate, which withdraws unhealthy
// backends from the routes it pushes.
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "common/admin_http_server.h"
#include "common/intermediate_channel.h"
#include "common/listen_address.h"
#include "common/metrics.h"
#include "common/mutex_lock.h"
#include "common/process.h"
#include "common/proto_time.h"
#include "dataplane/connector_backends.h"
#include "dataplane/connector_session_client.h"
#include "dataplane/connector_worker.h"
#include "dataplane/dataplane_metrics.h"
#include "dataplane/dataplane_process.h"
#include "dataplane/route_watcher.h"
#include "discovery/config_loader.h"
#include "discovery/config_watcher.h"
#include "ferry/v1/config.pb.h"
#include "glog/logging.h"

ABSL_FLAG(std::string, config, "", "Connector config file (YAML, ferry.v1.ConnectorConfig).");
ABSL_FLAG(std::string, intermediate, "",
          "Intermediate gRPC address; overrides the config's first intermediates entry.");
ABSL_FLAG(std::string, ca_cert, "", "Overrides tls.ca_cert of the config.");
ABSL_FLAG(std::string, cert, "", "Overrides tls.cert of the config.");
ABSL_FLAG(std::string, key, "", "Overrides tls.key of the config.");
ABSL_FLAG(std::string, admin_listen, "",
          "Admin HTTP address for /metrics; overrides admin_listen of the config "
          "(default 127.0.0.1:7491).");

namespace ferry {
namespace {

std::string FlagOr(const absl::Flag<std::string>& flag, const std::string& fallback) {
  std::string value = absl::GetFlag(flag);
  return value.empty() ? fallback : value;
}

std::vector<v1::ServiceSpec> ServicesOf(const v1::ConnectorConfig& config) {
  return {config.services().begin(), config.services().end()};
}

absl::Duration DurationOr(const google::protobuf::Duration& d, absl::Duration fallback) {
  const absl::Duration value = FromDurationProto(d);
  return value > absl::ZeroDuration() ? value : fallback;
}

v1::ConfigStatus ReloadOutcome(const std::string& path, const absl::Status& status) {
  v1::ConfigStatus outcome;
  outcome.set_path(path);
  if (!status.ok()) outcome.set_error(std::string(status.message()));
  *outcome.mutable_at() = ToTimestampProto(absl::Now());
  return outcome;
}

int Run() {
  const std::string path = absl::GetFlag(FLAGS_config);
  if (path.empty()) {
    LOG(ERROR) << "--config is required (see config/examples/connector.yaml)";
    return 2;
  }
  absl::StatusOr<v1::ConnectorConfig> config = discovery::LoadConfigFile<v1::ConnectorConfig>(path);
  if (!config.ok()) {
    LOG(ERROR) << config.status().message();
    return 2;
  }
  const std::string intermediate =
      FlagOr(FLAGS_intermediate, config->intermediates().empty() ? "" : config->intermediates(0));
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      DialIntermediate(intermediate, TlsFiles{FlagOr(FLAGS_ca_cert, config->tls().ca_cert()),
                                              FlagOr(FLAGS_cert, config->tls().cert()),
                                              FlagOr(FLAGS_key, config->tls().key())});
  if (!channel.ok()) {
    LOG(ERROR) << channel.status();
    return 2;
  }

  absl::StatusOr<std::unique_ptr<dataplane::WorkerGroup>> group = dataplane::StartWorkersFromFlags(
      dataplane::DataplaneRole::kConnector,
      config->listen().empty() ? "127.0.0.1:7490" : config->listen(),
      [](dataplane::WorkerOptions options, UniqueFd udp, UniqueFd listener,
         dataplane::WorkerSnapshots<dataplane::RouteTable>* routes) {
        return std::make_unique<dataplane::ConnectorWorker>(options, std::move(udp),
                                                            std::move(listener), routes);
      });
  if (!group.ok()) {
    LOG(ERROR) << "Cannot start the connector's workers: " << group.status();
    return 1;
  }
  const std::string listen = !absl::GetFlag(FLAGS_listen).empty() ? absl::GetFlag(FLAGS_listen)
                             : config->listen().empty()           ? "127.0.0.1:7490"
                                                                  : config->listen();
  const dataplane::DataplaneEndpoints endpoints = dataplane::AdvertisedEndpoints(listen, **group);

  auto registry = std::make_shared<prometheus::Registry>();
  dataplane::DataplaneMetrics metrics(*registry, "ferry_connector");
  auto& reloads = AddCounterFamily(*registry, "ferry_connector_config_reloads_total",
                                   "Config reloads by result (ok, error).");
  prometheus::Gauge& services_gauge =
      AddGaugeFamily(*registry, "ferry_connector_services", "Services in the live config.").Add({});
  services_gauge.Set(config->services_size());

  prometheus::Gauge& reload_ok =
      AddGaugeFamily(*registry, "ferry_connector_config_last_reload_ok",
                     "1 when the last config load succeeded, 0 while a refused file waits to be "
                     "fixed (the last good config is live).")
          .Add({});
  reload_ok.Set(1);

  // API-registered services arrive with each Welcome (origin "api") and as
  // ApiServices commands; both replace the set the backends are kept for.
  dataplane::ConnectorBackends* backends_ptr = nullptr;
  ConnectorSessionClient::Callbacks callbacks;
  callbacks.on_welcome = [&backends_ptr](const v1::Welcome& welcome) {
    std::vector<v1::ServiceSpec> api;
    for (const v1::Service& service : welcome.services()) {
      if (service.origin() == "api") api.push_back(service.spec());
    }
    backends_ptr->SetApiServices(std::move(api));
    backends_ptr->ReportAll();  // A new stream: the Intermediate starts from the spec.
  };
  callbacks.on_api_services = [&backends_ptr](const v1::ApiServices& services) {
    backends_ptr->SetApiServices({services.services().begin(), services.services().end()});
    LOG(INFO) << "Serving " << services.services_size() << " API-registered services";
    return absl::OkStatus();
  };
  ConnectorSessionClient session(*channel, std::string(FerryVersion()), std::move(callbacks));
  session.SetServices(ServicesOf(*config));

  // Routes: the Intermediate's snapshot, with each known service's backends
  // replaced by the connector's own view (so health takes effect at once).
  absl::Mutex routes_mu;
  std::optional<v1::RouteSnapshot> last_snapshot;
  auto apply_routes = [&](v1::RouteSnapshot snapshot) -> absl::Status {
    if (backends_ptr != nullptr) backends_ptr->ApplyTo(&snapshot);
    return (*group)->ApplyRoutes(snapshot);
  };
  dataplane::ConnectorBackends::Options backend_options;
  backend_options.dns_servers = {config->dns_servers().begin(), config->dns_servers().end()};
  backend_options.dns_min_ttl = DurationOr(config->dns_min_ttl(), absl::Seconds(5));
  backend_options.dns_max_ttl = DurationOr(config->dns_max_ttl(), absl::Seconds(300));
  backend_options.registry = registry.get();
  absl::StatusOr<std::unique_ptr<dataplane::ConnectorBackends>> backends =
      dataplane::ConnectorBackends::Start(
          backend_options, [&](const std::vector<v1::HealthReport>& reports) {
            for (const v1::HealthReport& report : reports) session.ReportHealth(report);
            MutexLock lock(&routes_mu);
            if (!last_snapshot.has_value()) return;
            if (absl::Status s = apply_routes(*last_snapshot); !s.ok()) {
              LOG(ERROR) << "Backends changed, but the routes could not be rebuilt: " << s;
            }
          });
  if (!backends.ok()) {
    LOG(ERROR) << "Cannot start backend discovery and health checks: " << backends.status();
    return 2;
  }
  backends_ptr = backends->get();
  (*backends)->SetConfigServices(ServicesOf(*config));

  RouteWatcher watcher(*channel, "connector", [&](const v1::RouteSnapshot& snapshot) {
    MutexLock lock(&routes_mu);
    if (absl::Status s = apply_routes(snapshot); !s.ok()) return s;
    last_snapshot = snapshot;
    metrics.SetServiceNames(dataplane::ServiceNames(snapshot));
    VLOG(1) << "Route version " << snapshot.version() << ": " << snapshot.services_size()
            << " services, " << snapshot.sessions_size() << " sessions";
    return absl::OkStatus();
  });
  watcher.SetDataAddresses(endpoints.udp_address, endpoints.stream_address);

  AdminHttpServer admin;
  dataplane::ServeDataplaneMetrics(admin, registry, &metrics, group->get());
  admin.ServeHealth([&session] { return session.connected(); });
  const std::string admin_listen =
      FlagOr(FLAGS_admin_listen,
             config->admin_listen().empty() ? "127.0.0.1:7491" : config->admin_listen());
  if (absl::Status s = admin.Start(admin_listen); !s.ok()) {
    LOG(ERROR) << "Cannot start the admin HTTP server: " << s;
    return 1;
  }
  session.Start();
  watcher.Start();
  const std::string admin_bound = BoundAddress(admin_listen, admin.port());
  LOG(INFO) << "Connector serving " << config->services_size() << " services from " << path
            << " via " << intermediate << " with " << (*group)->size() << " workers: frames on udp "
            << endpoints.udp_address << ", stream transports on tcp " << endpoints.stream_address
            << "; admin HTTP on " << admin_bound;
  if (absl::Status s = WriteReadyFile({{"admin_address", admin_bound},
                                       {"udp_address", endpoints.udp_address},
                                       {"stream_address", endpoints.stream_address}});
      !s.ok()) {
    LOG(ERROR) << s;
  }

  // SIGHUP and file changes (inotify, including editors' rename-on-save) both
  // reload; a reload is serialized so two triggers never interleave.
  absl::Mutex reload_mu;
  auto reload = [&] {
    MutexLock lock(&reload_mu);
    absl::StatusOr<v1::ConnectorConfig> next = discovery::LoadConfigFile<v1::ConnectorConfig>(path);
    session.SetConfigStatus(ReloadOutcome(path, next.status()));
    if (!next.ok()) {
      reloads.Add({{"result", "error"}}).Increment();
      reload_ok.Set(0);
      LOG(ERROR) << "Config reload refused; the last good config stays live: "
                 << next.status().message();
      return;
    }
    reloads.Add({{"result", "ok"}}).Increment();
    reload_ok.Set(1);
    services_gauge.Set(next->services_size());
    (*backends)->SetConfigServices(ServicesOf(*next));
    session.SetServices(ServicesOf(*next));
    LOG(INFO) << "Config reloaded: " << next->services_size() << " services";
  };
  discovery::ConfigWatcher config_watcher(path, reload);
  if (absl::Status s = config_watcher.Start(); !s.ok()) {
    LOG(WARNING) << "Not watching " << path << " for changes (" << s
                 << "); SIGHUP still reloads it";
  }
  WaitForShutdownSignal(reload);
  config_watcher.Stop();

  // The session ends first, so the Intermediate starts the grace period.
  session.Stop();
  watcher.Stop();
  backends->reset();  // Its callback uses the session and the routes.
  admin.Stop();
  (*group)->Stop();
  LOG(INFO) << "Connector stopped";
  return 0;
}

}  // namespace
}  // namespace ferry

int main(int argc, char** argv) {
  ferry::InitProcess(argc, argv,
                     "ferry-connector: serves services next to their backends.\n"
                     "  ferry-connector --config connector.yaml");
  return ferry::Run();
}
