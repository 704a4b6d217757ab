#include "common/metrics.h"

#include <exception>
#include <vector>

#include "glog/logging.h"
#include "prometheus/check_names.h"
#include "prometheus/metric_family.h"
#include "prometheus/text_serializer.h"

namespace ferry {
namespace {

void CheckNames(const std::string& name, const prometheus::Labels& labels) {
  CHECK(prometheus::CheckMetricName(name))
      << "invalid Prometheus metric name \"" << name
      << "\": use [a-zA-Z_:][a-zA-Z0-9_:]*, not starting with __";
  for (const auto& label : labels) {
    CHECK(prometheus::CheckLabelName(label.first))
        << "invalid Prometheus label name \"" << label.first << "\" on metric \"" << name
        << "\": use [a-zA-Z_][a-zA-Z0-9_]*, not starting with __";
  }
}

// Builder::Register throws std::invalid_argument when the name is taken by
// another type or other constant labels; turn that into a crash that names the
// metric, as the header promises.
template <typename T>
prometheus::Family<T>& Register(prometheus::detail::Builder<T> builder,
                                prometheus::Registry& registry, const std::string& name,
                                const std::string& help,
                                const prometheus::Labels& constant_labels) {
  CheckNames(name, constant_labels);
  try {
    return builder.Name(name).Help(help).Labels(constant_labels).Register(registry);
  } catch (const std::exception& e) {
    LOG(FATAL) << "cannot register metric \"" << name << "\": " << e.what()
               << " (the name is already used by a metric of another type or with other "
                  "constant labels)";
  }
}

}  // namespace

const prometheus::Histogram::BucketBoundaries& LatencyBucketsSeconds() {
  static const auto* const kBuckets = new prometheus::Histogram::BucketBoundaries{
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return *kBuckets;
}

prometheus::Family<prometheus::Counter>& AddCounterFamily(
    prometheus::Registry& registry, const std::string& name, const std::string& help,
    const prometheus::Labels& constant_labels) {
  return Register(prometheus::BuildCounter(), registry, name, help, constant_labels);
}

prometheus::Family<prometheus::Gauge>& AddGaugeFamily(prometheus::Registry& registry,
                                                      const std::string& name,
                                                      const std::string& help,
                                                      const prometheus::Labels& constant_labels) {
  return Register(prometheus::BuildGauge(), registry, name, help, constant_labels);
}

prometheus::Family<prometheus::Histogram>& AddHistogramFamily(
    prometheus::Registry& registry, const std::string& name, const std::string& help,
    const prometheus::Labels& constant_labels) {
  return Register(prometheus::BuildHistogram(), registry, name, help, constant_labels);
}

prometheus::Histogram& AddLatencyHistogram(prometheus::Family<prometheus::Histogram>& family,
                                           const prometheus::Labels& labels) {
  CheckNames(family.GetName(), labels);
  try {
    return family.Add(labels, LatencyBucketsSeconds());
  } catch (const std::exception& e) {
    LOG(FATAL) << "cannot add a histogram to metric \"" << family.GetName() << "\": " << e.what()
               << " (a label repeats one of the family's constant labels)";
  }
}

std::string SerializeText(const prometheus::Collectable& collectable) {
  const std::vector<prometheus::MetricFamily> families = collectable.Collect();
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace ferry
