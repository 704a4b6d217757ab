#include "dataplane/worker_group.h"

#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "dataplane/udp_socket_group.h"
#include "glog/logging.h"

namespace ferry::dataplane {

absl::StatusOr<std::unique_ptr<WorkerGroup>> WorkerGroup::Start(Options options,
                                                                const WorkerFactory& factory) {
  size_t count = options.workers;
  if (count == 0) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    count = cpus > 0 ? static_cast<size_t>(cpus) : 1;
  }
  std::unique_ptr<WorkerGroup> group(new WorkerGroup());
  group->role_ = options.role;
  group->snapshots_ = std::make_unique<WorkerSnapshots<RouteTable>>(count);

  absl::StatusOr<UdpSocketGroup> udp =
      OpenUdpSocketGroup(options.udp_listen, static_cast<int>(count), 4 * 1024 * 1024);
  if (!udp.ok()) return udp.status();
  group->udp_port_ = udp->port;
  absl::StatusOr<TcpListenerGroup> listeners =
      OpenTcpListenerGroup(options.stream_listen, static_cast<int>(count));
  if (!listeners.ok()) return listeners.status();
  group->stream_port_ = listeners->port;

  for (size_t i = 0; i < count; ++i) {
    WorkerOptions worker_options = options.worker;
    worker_options.index = i;
    worker_options.workers = count;
    std::unique_ptr<DataplaneWorker> worker =
        factory(worker_options, std::move(udp->sockets[i]), std::move(listeners->listeners[i]),
                group->snapshots_.get());
    if (absl::Status s = worker->Init(); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("worker ", i, ": ", s.message()));
    }
    group->workers_.push_back(std::move(worker));
  }
  for (auto& worker : group->workers_) {
    DataplaneWorker* raw = worker.get();
    group->threads_.emplace_back([raw] { raw->Run(); });
  }
  return group;
}

WorkerGroup::~WorkerGroup() { Stop(); }

absl::Status WorkerGroup::ApplyRoutes(const v1::RouteSnapshot& snapshot) {
  absl::StatusOr<std::shared_ptr<const RouteTable>> table =
      RouteTable::Build(snapshot, role_, workers_.size());
  if (!table.ok()) return table.status();
  snapshots_->Publish(*std::move(table));
  return absl::OkStatus();
}

void WorkerGroup::Stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& worker : workers_) worker->Stop();
  for (std::thread& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
  workers_.clear();
}

}  // namespace ferry::dataplane
