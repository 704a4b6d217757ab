#include "dataplane/dataplane_metrics.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/metrics.h"
#include "common/mutex_lock.h"

namespace ferry::dataplane {

DataplaneMetrics::DataplaneMetrics(prometheus::Registry& registry, const std::string& prefix)
    : frames_(AddCounterFamily(registry, prefix + "_frames_total",
                               "Frames received (in) and sent (out), by service.")),
      bytes_(AddCounterFamily(registry, prefix + "_bytes_total",
                              "Frame bytes received (in) and sent (out), by service.")),
      drops_(AddCounterFamily(registry, prefix + "_drops_total",
                              "Frames dropped, by reason (see docs/METRICS.md).")),
      flows_(AddGaugeFamily(registry, prefix + "_flows", "Flows in the flow tables.").Add({})),
      evictions_(AddCounterFamily(registry, prefix + "_flow_evictions_total",
                                  "Flows evicted after their idle timeout.")
                     .Add({})),
      route_version_(AddGaugeFamily(registry, prefix + "_route_version",
                                    "Route version in use (the lowest any worker holds).")
                         .Add({})),
      workers_(AddGaugeFamily(registry, prefix + "_workers", "Data-plane worker threads.").Add({})),
      last_drops_(kDropReasonCount, 0) {
  for (DropReason reason : AllDropReasons()) {
    drops_.Add({{"reason", std::string(DropReasonName(reason))}});
  }
}

void DataplaneMetrics::SetServiceNames(
    std::map<uint32_t, std::pair<std::string, std::string>> names) {
  MutexLock lock(&mu_);
  names_ = std::move(names);
}

void DataplaneMetrics::Advance(prometheus::Counter& counter, uint64_t* last, uint64_t now) {
  if (now > *last) counter.Increment(static_cast<double>(now - *last));
  *last = std::max(*last, now);
}

void DataplaneMetrics::Update(const std::vector<const DataplaneWorker*>& workers) {
  MutexLock lock(&mu_);
  std::map<uint32_t, Totals> services;
  std::vector<uint64_t> drops(kDropReasonCount, 0);
  uint64_t flows = 0, evictions = 0, version = 0;
  bool first = true;
  for (const DataplaneWorker* worker : workers) {
    worker->traffic().ForEach([&](uint32_t id, uint64_t fi, uint64_t bi, uint64_t fo, uint64_t bo) {
      Totals& t = services[id];
      t.frames_in += fi;
      t.bytes_in += bi;
      t.frames_out += fo;
      t.bytes_out += bo;
    });
    std::array<uint64_t, kDropReasonCount> d = worker->drops().Snapshot();
    for (size_t i = 0; i < kDropReasonCount; ++i) drops[i] += d[i];
    flows += worker->flows();
    evictions += worker->evictions();
    version = first ? worker->route_version() : std::min(version, worker->route_version());
    first = false;
  }
  for (const auto& [id, totals] : services) {
    // Service 0 collects what no per-service slot took (ServiceCounters).
    std::string name = id == 0 ? "other" : absl::StrCat("id-", id);
    std::string tenant;
    if (auto it = names_.find(id); it != names_.end()) {
      name = it->second.first;
      tenant = it->second.second;
    }
    Totals& last = last_services_[id];
    prometheus::Labels in = {{"direction", "in"}, {"service", name}, {"tenant", tenant}};
    prometheus::Labels out = {{"direction", "out"}, {"service", name}, {"tenant", tenant}};
    Advance(frames_.Add(in), &last.frames_in, totals.frames_in);
    Advance(bytes_.Add(in), &last.bytes_in, totals.bytes_in);
    Advance(frames_.Add(out), &last.frames_out, totals.frames_out);
    Advance(bytes_.Add(out), &last.bytes_out, totals.bytes_out);
  }
  for (DropReason reason : AllDropReasons()) {
    size_t i = static_cast<size_t>(reason);
    Advance(drops_.Add({{"reason", std::string(DropReasonName(reason))}}), &last_drops_[i],
            drops[i]);
  }
  flows_.Set(static_cast<double>(flows));
  Advance(evictions_, &last_evictions_, evictions);
  route_version_.Set(static_cast<double>(version));
  workers_.Set(static_cast<double>(workers.size()));
}

}  // namespace ferry::dataplane
