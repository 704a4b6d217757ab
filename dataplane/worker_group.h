// The workers of one data-plane process (relay or connector): opens the
// SO_REUSEPORT UDP group (CBPF-steered by flow id) and one stream listener
// per worker on a shared port, runs one thread per worker, and turns each
// route snapshot into a RouteTable that every worker picks up between
// batches. Old tables are freed once no worker holds them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "dataplane/dataplane_worker.h"
#include "dataplane/route_table.h"
#include "dataplane/worker_snapshots.h"
#include "ferry/v1/routes.pb.h"

namespace ferry::dataplane {

class WorkerGroup {
 public:
  using WorkerFactory = std::function<std::unique_ptr<DataplaneWorker>(
      WorkerOptions options, UniqueFd udp, UniqueFd stream_listener,
      WorkerSnapshots<RouteTable>* routes)>;

  struct Options {
    DataplaneRole role = DataplaneRole::kRelay;
    // Workers; 0 means one per online CPU.
    size_t workers = 0;
    std::string udp_listen = "0.0.0.0:0";
    std::string stream_listen = "0.0.0.0:0";
    WorkerOptions worker;  // index and workers are filled in
  };

  // Binds, creates and starts the workers. Errors name the address or worker
  // that failed; nothing keeps running on error.
  static absl::StatusOr<std::unique_ptr<WorkerGroup>> Start(Options options,
                                                            const WorkerFactory& factory);
  ~WorkerGroup();  // Stop()s.

  // Builds the table for `snapshot` and publishes it; the error (a NACK) keeps
  // the table in use. Called by the route watcher's thread.
  absl::Status ApplyRoutes(const v1::RouteSnapshot& snapshot);

  // Stops and joins every worker. Idempotent.
  void Stop();

  uint16_t udp_port() const { return udp_port_; }
  uint16_t stream_port() const { return stream_port_; }
  size_t size() const { return workers_.size(); }
  const DataplaneWorker& worker(size_t i) const { return *workers_[i]; }
  // The newest table published (null before the first). Control thread only.
  const RouteTable* current_routes() const { return snapshots_->Current(); }

 private:
  WorkerGroup() = default;

  DataplaneRole role_ = DataplaneRole::kRelay;
  std::unique_ptr<WorkerSnapshots<RouteTable>> snapshots_;
  std::vector<std::unique_ptr<DataplaneWorker>> workers_;
  std::vector<std::thread> threads_;
  uint16_t udp_port_ = 0;
  uint16_t stream_port_ = 0;
  bool stopped_ = false;
};

}  // namespace ferry::dataplane
