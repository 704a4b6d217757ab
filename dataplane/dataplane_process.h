// What ferry-relay and ferry-connector share around their workers: the
// data-plane flags, starting the WorkerGroup from them, the addresses to
// announce to the Intermediate, and the /metrics handler that folds the
// workers' counters in on each scrape.
//
// Flags (both binaries): --listen (UDP frames), --stream_listen (TCP stream
// transports; default: the --listen host with a port of its own),
// --advertise_host, --workers, --udp_idle_timeout, --stream_idle_timeout,
// --max_flows, --max_flows_per_session.
#pragma once

#include <memory>
#include <string>

#include "absl/flags/declare.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/admin_http_server.h"
#include "dataplane/dataplane_metrics.h"
#include "dataplane/worker_group.h"
#include "prometheus/registry.h"

ABSL_DECLARE_FLAG(std::string, listen);
ABSL_DECLARE_FLAG(std::string, stream_listen);
ABSL_DECLARE_FLAG(std::string, advertise_host);
ABSL_DECLARE_FLAG(uint32_t, workers);
ABSL_DECLARE_FLAG(absl::Duration, udp_idle_timeout);
ABSL_DECLARE_FLAG(absl::Duration, stream_idle_timeout);
ABSL_DECLARE_FLAG(uint32_t, max_flows);
ABSL_DECLARE_FLAG(uint32_t, max_flows_per_session);

namespace ferry::dataplane {

// Starts the workers for `role` from the flags. `default_listen` is used when
// --listen is empty (the config file's value, or the binary's default port).
// INVALID_ARGUMENT for a bad flag value; the bind errors otherwise.
absl::StatusOr<std::unique_ptr<WorkerGroup>> StartWorkersFromFlags(
    DataplaneRole role, const std::string& default_listen,
    const WorkerGroup::WorkerFactory& factory);

struct DataplaneEndpoints {
  std::string udp_address;     // "host:port" peers send frames to
  std::string stream_address;  // "host:port" peers open stream transports to
};

// The addresses to announce: --advertise_host (else the listen host; for a
// wildcard listen host, 127.0.0.1 with a warning) with the bound ports.
DataplaneEndpoints AdvertisedEndpoints(const std::string& listen, const WorkerGroup& group);

// Serves /metrics on `admin`: each scrape updates `metrics` from `group`'s
// workers, then renders `registry`. All must outlive the server.
void ServeDataplaneMetrics(AdminHttpServer& admin, std::shared_ptr<prometheus::Registry> registry,
                           DataplaneMetrics* metrics, const WorkerGroup* group);

// Service names by id from a snapshot, for DataplaneMetrics::SetServiceNames.
std::map<uint32_t, std::pair<std::string, std::string>> ServiceNames(
    const v1::RouteSnapshot& snapshot);

}  // namespace ferry::dataplane
