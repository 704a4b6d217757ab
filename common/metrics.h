// Small conveniences over prometheus-cpp shared by every Ferry process, so
// that metric families are declared in one line and every latency histogram
// uses the same buckets (dashboards can then compare them).
//
// Metric names and labels in Ferry are compile-time constants, so a bad name or
// a name reused with another metric type is a bug in Ferry itself: these
// functions check it and crash with a message naming the metric (CHECK-style)
// instead of letting prometheus-cpp's std::invalid_argument escape.
#pragma once

#include <string>

#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/labels.h"
#include "prometheus/registry.h"

namespace ferry {

// The Content-Type of SerializeText's output (Prometheus text format 0.0.4).
inline constexpr char kPrometheusTextContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// Bucket upper bounds, in seconds, for RPC, push and other request latencies:
// 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
// (strictly increasing; Prometheus adds +Inf). Thread-safe; the reference
// stays valid for the life of the process.
const prometheus::Histogram::BucketBoundaries& LatencyBucketsSeconds();

// Registers (or, when `registry` already holds a family of the same type, name
// and constant labels, returns) a family in `registry`. `registry` owns the
// family; the reference stays valid as long as the registry does. Thread-safe
// as prometheus::Registry is. Crashes (a bug in the caller) when `name` or a
// constant label name is not a valid Prometheus name, or when `name` is already
// registered with another metric type or other constant labels.
prometheus::Family<prometheus::Counter>& AddCounterFamily(
    prometheus::Registry& registry, const std::string& name, const std::string& help,
    const prometheus::Labels& constant_labels = {});
prometheus::Family<prometheus::Gauge>& AddGaugeFamily(
    prometheus::Registry& registry, const std::string& name, const std::string& help,
    const prometheus::Labels& constant_labels = {});
prometheus::Family<prometheus::Histogram>& AddHistogramFamily(
    prometheus::Registry& registry, const std::string& name, const std::string& help,
    const prometheus::Labels& constant_labels = {});

// Adds (or returns the existing) histogram with `labels` to `family`, bucketed
// by LatencyBucketsSeconds(); observe durations in seconds. `family` owns it.
// Crashes (a bug in the caller) when a label name is invalid or repeats one of
// the family's constant labels.
prometheus::Histogram& AddLatencyHistogram(prometheus::Family<prometheus::Histogram>& family,
                                           const prometheus::Labels& labels = {});

// Collects `collectable` (usually a prometheus::Registry) and renders it in
// Prometheus text format, the body of a /metrics response. Thread-safe.
std::string SerializeText(const prometheus::Collectable& collectable);

}  // namespace ferry
