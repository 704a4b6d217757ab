#include "dataplane/dataplane_process.h"

#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/listen_address.h"
#include "common/metrics.h"
#include "glog/logging.h"

ABSL_FLAG(std::string, listen, "",
          "UDP address for data-plane frames (relay default 127.0.0.1:7480, connector default the "
          "config's listen, else 127.0.0.1:7490).");
ABSL_FLAG(std::string, stream_listen, "",
          "TCP address for stream transports (TCP services); default: the --listen host and "
          "port.");
ABSL_FLAG(std::string, advertise_host, "",
          "Host or IP that peers use to reach the data-plane ports (default: the listen host; "
          "127.0.0.1 when listening on a wildcard address).");
ABSL_FLAG(uint32_t, workers, 0, "Data-plane worker threads (0: one per CPU).");
ABSL_FLAG(absl::Duration, udp_idle_timeout, absl::Seconds(60),
          "A UDP flow with no frame for this long is evicted.");
ABSL_FLAG(absl::Duration, stream_idle_timeout, absl::Hours(1),
          "A TCP flow with no frame for this long is reset.");
ABSL_FLAG(uint32_t, max_flows, 16384, "Flow-table capacity of each worker.");
ABSL_FLAG(uint32_t, max_flows_per_session, 4096,
          "Flows one session may hold on each worker; further flows are refused (flow_limit).");

namespace ferry::dataplane {

absl::StatusOr<std::unique_ptr<WorkerGroup>> StartWorkersFromFlags(
    DataplaneRole role, const std::string& default_listen,
    const WorkerGroup::WorkerFactory& factory) {
  WorkerGroup::Options options;
  options.role = role;
  options.workers = absl::GetFlag(FLAGS_workers);
  options.udp_listen = absl::GetFlag(FLAGS_listen);
  if (options.udp_listen.empty()) options.udp_listen = default_listen;
  options.stream_listen = absl::GetFlag(FLAGS_stream_listen);
  if (options.stream_listen.empty()) options.stream_listen = options.udp_listen;
  options.worker.udp_idle_timeout = absl::GetFlag(FLAGS_udp_idle_timeout);
  options.worker.stream_idle_timeout = absl::GetFlag(FLAGS_stream_idle_timeout);
  options.worker.flow_capacity = absl::GetFlag(FLAGS_max_flows);
  options.worker.max_flows_per_session = absl::GetFlag(FLAGS_max_flows_per_session);
  if (options.worker.udp_idle_timeout <= absl::ZeroDuration() ||
      options.worker.stream_idle_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "--udp_idle_timeout and --stream_idle_timeout must be positive");
  }
  if (options.worker.flow_capacity == 0 || options.worker.max_flows_per_session == 0) {
    return absl::InvalidArgumentError("--max_flows and --max_flows_per_session must be at least 1");
  }
  return WorkerGroup::Start(options, factory);
}

DataplaneEndpoints AdvertisedEndpoints(const std::string& listen, const WorkerGroup& group) {
  std::string host = absl::GetFlag(FLAGS_advertise_host);
  if (host.empty()) {
    uint16_t ignored = 0;
    if (!ParseHostPort(listen, PortRule::kAllowZero, &host, &ignored).ok()) host.clear();
    if (host.empty() || host == "0.0.0.0" || host == "::") {
      LOG(WARNING) << "Listening on a wildcard address (" << listen
                   << "); announcing 127.0.0.1. Set --advertise_host to the address peers reach.";
      host = "127.0.0.1";
    }
  }
  const std::string shown =
      host.find(':') != std::string::npos ? absl::StrCat("[", host, "]") : host;
  return DataplaneEndpoints{absl::StrCat(shown, ":", group.udp_port()),
                            absl::StrCat(shown, ":", group.stream_port())};
}

void ServeDataplaneMetrics(AdminHttpServer& admin, std::shared_ptr<prometheus::Registry> registry,
                           DataplaneMetrics* metrics, const WorkerGroup* group) {
  admin.Handle("/metrics", [registry, metrics, group](const HttpRequest&) {
    std::vector<const DataplaneWorker*> workers;
    for (size_t i = 0; i < group->size(); ++i) workers.push_back(&group->worker(i));
    metrics->Update(workers);
    HttpResponse response;
    response.content_type = "text/plain; version=0.0.4; charset=utf-8";
    response.body = SerializeText(*registry);
    return response;
  });
}

std::map<uint32_t, std::pair<std::string, std::string>> ServiceNames(
    const v1::RouteSnapshot& snapshot) {
  std::map<uint32_t, std::pair<std::string, std::string>> names;
  for (const v1::RouteService& service : snapshot.services()) {
    names[service.service_id()] = {service.name(), service.tenant()};
  }
  return names;
}

}  // namespace ferry::dataplane
