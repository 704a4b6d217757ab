// Reading a Ferry process's admin HTTP port from a test: a raw-socket HTTP GET
// (so the test depends on no HTTP client library and sees exactly what a
// scraper sees), and a small parser for the Prometheus text format that finds
// one sample by name and labels, or a histogram's buckets.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace ferry::harness {

struct HttpGetResult {
  int status = 0;
  std::string body;
};

// GET `path` from `address` ("127.0.0.1:port") over HTTP/1.1 with
// Connection: close; reads to EOF. UNAVAILABLE when the connection fails,
// DEADLINE_EXCEEDED after `timeout`, DATA_LOSS for a malformed response.
absl::StatusOr<HttpGetResult> HttpGet(const std::string& address, const std::string& path,
                                      absl::Duration timeout = absl::Seconds(5));

// The /metrics body; FAILED_PRECONDITION when the status is not 200.
absl::StatusOr<std::string> FetchMetrics(const std::string& admin_address);

using MetricLabels = std::map<std::string, std::string>;

// The value of the sample `name` whose label set is exactly `labels`, in the
// Prometheus text exposition `text`; nullopt when there is none. Comment
// lines are skipped; label values may carry \\, \" and \n escapes.
std::optional<double> MetricValue(absl::string_view text, absl::string_view name,
                                  const MetricLabels& labels = {});

// Same, reading an absent sample as 0 (a labelled counter that was never
// incremented is not exported at all).
double MetricValueOr0(absl::string_view text, absl::string_view name,
                      const MetricLabels& labels = {});

// Scrapes `admin_address` every 50 ms until sample `name`{labels} (absent
// reads as 0) is at least `at_least`; returns its value then. The scrape
// error, or DEADLINE_EXCEEDED with the last value seen after `timeout`.
absl::StatusOr<double> WaitForMetricAtLeast(const std::string& admin_address,
                                            absl::string_view name, const MetricLabels& labels,
                                            double at_least,
                                            absl::Duration timeout = absl::Seconds(10));

// The cumulative buckets (upper bound "le", count) of histogram `name`
// (samples `name`_bucket with `labels` plus le), sorted by bound, +Inf last.
// Empty when the histogram is not in `text`.
std::vector<std::pair<double, double>> HistogramBuckets(absl::string_view text,
                                                        absl::string_view name,
                                                        const MetricLabels& labels = {});

// `after` minus `before`, bucket by bucket (same bounds; a bound missing from
// `before` counts as 0): the observations made between two scrapes.
std::vector<std::pair<double, double>> SubtractBuckets(
    const std::vector<std::pair<double, double>>& after,
    const std::vector<std::pair<double, double>>& before);

// Prometheus's histogram_quantile: the q-quantile (0 <= q <= 1) estimated by
// linear interpolation inside the bucket that holds it (the lowest bucket
// starts at 0; a quantile in the +Inf bucket returns the highest finite
// bound). nullopt when the buckets hold no observation.
std::optional<double> BucketQuantile(double q,
                                     const std::vector<std::pair<double, double>>& buckets);

}  // namespace ferry::harness
