#include "tests/harness/fabric_test_base.h"

#include <sys/resource.h>

#include <algorithm>
#include <iostream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace ferry::harness {

double SumSamples(absl::string_view text, absl::string_view name, const MetricLabels& labels) {
  double sum = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(line, name)) continue;
    absl::string_view rest = line.substr(name.size());
    if (rest.empty() || (rest[0] != '{' && rest[0] != ' ')) continue;  // a longer name
    bool match = true;
    for (const auto& [key, value] : labels) {
      match = match && absl::StrContains(rest, absl::StrCat(key, "=\"", value, "\""));
    }
    double value = 0;
    const size_t space = rest.rfind(' ');
    if (match && space != absl::string_view::npos &&
        absl::SimpleAtod(absl::StripAsciiWhitespace(rest.substr(space + 1)), &value)) {
      sum += value;
    }
  }
  return sum;
}

std::string Scrape(const std::string& admin_address) {
  absl::StatusOr<std::string> text = FetchMetrics(admin_address);
  EXPECT_TRUE(text.ok()) << text.status();
  return text.ok() ? *text : "";
}

FabricService Service(std::string name, v1::Protocol protocol, std::vector<std::string> backends,
                      uint32_t port) {
  return FabricService{std::move(name), protocol, std::move(backends), port};
}

backends::BackendOptions UdpEcho(std::string name, std::string prefix) {
  backends::BackendOptions options;
  options.name = std::move(name);
  options.udp_echo = true;
  options.echo_prefix = std::move(prefix);
  return options;
}

backends::UdpExchangeOptions Datagrams(int per_flow) {
  backends::UdpExchangeOptions options;
  options.datagrams_per_flow = per_flow;
  options.max_attempts = 4;
  options.retry_after = absl::Milliseconds(750);
  options.timeout = absl::Seconds(60);
  return options;
}

std::string Describe(const backends::UdpFlowStats& stats) {
  std::string prefixes;
  for (const auto& [prefix, count] : stats.answered_by_prefix) {
    absl::StrAppend(&prefixes, " \"", prefix, "\":", count);
  }
  std::string samples;
  for (const std::string& sample : stats.foreign_samples) absl::StrAppend(&samples, "\n  ", sample);
  return absl::StrCat("sent ", stats.sent, ", answered ", stats.answered, " (by prefix", prefixes,
                      "), retries ", stats.retries, ", duplicates ", stats.duplicates, ", foreign ",
                      stats.foreign, samples);
}

void FabricTest::SetUp() {
  absl::StatusOr<DevPki*> pki = SharedDevPki();
  ASSERT_TRUE(pki.ok()) << pki.status();
  pki_ = *pki;
  rlimit limit{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  if (limit.rlim_cur < 4096 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, 4096);
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &limit), 0);
  }
}

void FabricTest::TearDown() {
  if (!HasFailure() || fabric_ == nullptr) return;
  for (FabricProcess* process : fabric_->data_plane_processes()) {
    absl::StatusOr<std::string> text = FetchMetrics(process->admin_address());
    if (!text.ok()) {
      std::cerr << process->name() << " metrics: " << text.status() << "\n";
      continue;
    }
    std::string lines;
    for (absl::string_view line : absl::StrSplit(*text, '\n')) {
      if (absl::StartsWith(line, "#") || !(absl::StrContains(line, "_drops_total") ||
                                           absl::StrContains(line, "_evictions_total"))) {
        continue;
      }
      if (!absl::EndsWith(line, " 0")) absl::StrAppend(&lines, "  ", line, "\n");
    }
    std::cerr << process->name() << " drops and evictions:\n"
              << (lines.empty() ? "  (none)\n" : lines);
  }
}

backends::BackendProcess* FabricTest::StartBackend(const backends::BackendOptions& options) {
  absl::StatusOr<std::unique_ptr<backends::BackendProcess>> backend =
      backends::BackendProcess::Start(options);
  EXPECT_TRUE(backend.ok()) << backend.status();
  if (!backend.ok()) return nullptr;
  backends_.push_back(*std::move(backend));
  return backends_.back().get();
}

void FabricTest::StartFabric(FabricOptions options) {
  absl::StatusOr<std::unique_ptr<Fabric>> fabric = Fabric::Start(*pki_, std::move(options));
  ASSERT_TRUE(fabric.ok()) << fabric.status();
  fabric_ = *std::move(fabric);
}

void FabricTest::StartSimpleFabric(std::vector<FabricService> services,
                                   std::vector<std::string> exposures) {
  FabricOptions options;
  options.connectors.push_back(ConnectorSpec{"acme", "edge-1", std::move(services)});
  options.agents.push_back(AgentSpec{"acme", "laptop", std::move(exposures)});
  StartFabric(std::move(options));
}

}  // namespace ferry::harness
