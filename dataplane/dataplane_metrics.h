// Prometheus export of a data-plane process's workers: the workers keep
// plain per-worker counters (no lock, no allocation on their path); on each
// scrape, Update() sums them and moves the registry's families to match.
//
// Families (<prefix> is ferry_relay, ferry_connector or ferry_agent):
//   <prefix>_frames_total{direction="in|out",service,tenant}   counter
//   <prefix>_bytes_total{direction="in|out",service,tenant}    counter (frame bytes)
//   <prefix>_drops_total{reason}                               counter (every reason, zeros too)
//   <prefix>_flows                                             gauge
//   <prefix>_flow_evictions_total                              counter (idle timeouts)
//   <prefix>_route_version                                     gauge (lowest version any worker
//   uses) <prefix>_workers                                           gauge
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "dataplane/dataplane_worker.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace ferry::dataplane {

class DataplaneMetrics {
 public:
  DataplaneMetrics(prometheus::Registry& registry, const std::string& prefix);

  // Service names for the service label, from the route snapshot in use
  // (any thread).
  void SetServiceNames(std::map<uint32_t, std::pair<std::string, std::string>> names);

  // Sums `workers`' counters into the families. Thread-safe (serialized).
  void Update(const std::vector<const DataplaneWorker*>& workers);

 private:
  struct Totals {
    uint64_t frames_in = 0, bytes_in = 0, frames_out = 0, bytes_out = 0;
  };
  void Advance(prometheus::Counter& counter, uint64_t* last, uint64_t now);

  prometheus::Family<prometheus::Counter>& frames_;
  prometheus::Family<prometheus::Counter>& bytes_;
  prometheus::Family<prometheus::Counter>& drops_;
  prometheus::Gauge& flows_;
  prometheus::Counter& evictions_;
  prometheus::Gauge& route_version_;
  prometheus::Gauge& workers_;

  absl::Mutex mu_;
  std::map<uint32_t, std::pair<std::string, std::string>> names_;  // id -> (name, tenant)
  std::map<uint32_t, Totals> last_services_;
  std::vector<uint64_t> last_drops_;
  uint64_t last_evictions_ = 0;
};

}  // namespace ferry::dataplane
