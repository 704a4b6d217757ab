// What the end-to-end tests of a whole fabric share: a gtest fixture that
// starts test backends and a Fabric (tests/harness/fabric.h), prints the
// data plane's non-zero drop and eviction counters when a test fails, and
// small helpers for metrics and UDP flows.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "ferry/v1/common.pb.h"
#include "gtest/gtest.h"
#include "tests/backends/backend_process.h"
#include "tests/backends/udp_flows.h"
#include "tests/harness/dev_pki_fixture.h"
#include "tests/harness/fabric.h"
#include "tests/harness/metrics_scrape.h"

namespace ferry::harness {

// Sum of every sample of `name` whose labels include each of `labels` (other
// labels may be there too), in the Prometheus text `text`.
double SumSamples(absl::string_view text, absl::string_view name, const MetricLabels& labels);

// The metrics text of `admin_address`; "" (with a test failure) when unreachable.
std::string Scrape(const std::string& admin_address);

FabricService Service(std::string name, v1::Protocol protocol, std::vector<std::string> backends,
                      uint32_t port = 0);

// Backend options for a UDP echo named `name` whose replies start with `prefix`.
backends::BackendOptions UdpEcho(std::string name, std::string prefix = "");

// `per_flow` new datagrams per flow, 4 sends each at most, 750 ms apart.
backends::UdpExchangeOptions Datagrams(int per_flow);

// One line on what a flow (or set of flows) saw, for failure messages.
std::string Describe(const backends::UdpFlowStats& stats);

class FabricTest : public ::testing::Test {
 protected:
  // Takes the shared DevPki and raises RLIMIT_NOFILE to 4096 (tests with
  // many flows hold that many sockets).
  void SetUp() override;
  // After a failure, every drop and eviction counter of the data plane that
  // is not zero, so the log says where frames went missing.
  void TearDown() override;

  // A started backend owned by the test, or null (with a test failure).
  backends::BackendProcess* StartBackend(const backends::BackendOptions& options);
  // Starts the fabric; on failure the test fails (callers ASSERT on fabric_).
  void StartFabric(FabricOptions options);
  // The common shape: tenant acme, connector edge-1 serving `services`, agent
  // laptop exposing `exposures`.
  void StartSimpleFabric(std::vector<FabricService> services, std::vector<std::string> exposures);

  DevPki* pki_ = nullptr;
  // Declared before fabric_, so the fabric (whose connectors hold flows to
  // the backends) stops first.
  std::vector<std::unique_ptr<backends::BackendProcess>> backends_;
  std::unique_ptr<Fabric> fabric_;
};

}  // namespace ferry::harness
