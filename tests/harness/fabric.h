// A whole Ferry fabric as real processes, for end-to-end tests: the
// Intermediate, one relay, connectors (each with a YAML config written from a
// list of services) and agents (each exposing services on kernel-picked
// loopback ports), all with certificates from a DevPki and all on 127.0.0.1.
//
//   Fabric::Start brings them up in dependency order: Intermediate, relay,
//   connectors; then it waits until the relay has acknowledged a route
//   version holding every connector's services ("routed"), and only then
//   starts the agents, so their first session attempt meets a routed fabric.
//
// Every process is a FerryProcess (tests/harness/ferry_process.h): its own
// directory under TEST_TMPDIR, --log_dir and --ready_file, stopped with
// SIGTERM (by its own PID only) when the Fabric is destroyed, in reverse start
// order. Not thread-safe: use a Fabric from the test's main thread (processes
// get PR_SET_PDEATHSIG for the thread that starts them).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/tls_files.h"
#include "ferry/v1/common.pb.h"
#include "grpcpp/channel.h"
#include "tests/harness/dev_pki_fixture.h"
#include "tests/harness/ferry_process.h"
#include "tests/harness/intermediate_process.h"

namespace ferry::harness {

// The tenant of the fabric's own parties: the relay and the operator admin the
// harness uses to watch the Intermediate (an operator sees every tenant).
inline constexpr char kFabricOperatorTenant[] = "ops";

// Certificates for the parties of one tenant, issued from a DevPki (which
// must outlive this object). Issuing an identity twice returns the same files.
class TenantPki {
 public:
  TenantPki(DevPki& pki, std::string tenant) : pki_(&pki), tenant_(std::move(tenant)) {}

  const std::string& tenant() const { return tenant_; }

  // spiffe://<trust domain>/tenant/<tenant>/<role>/<name>; DevPki::Issue's errors
  // (INVALID_ARGUMENT for a name that is not a DNS label).
  absl::StatusOr<TlsFiles> Issue(const std::string& role, const std::string& name) {
    return pki_->Issue(tenant_, role, name);
  }
  absl::StatusOr<TlsFiles> Connector(const std::string& name) { return Issue("connector", name); }
  absl::StatusOr<TlsFiles> Agent(const std::string& name) { return Issue("agent", name); }
  absl::StatusOr<TlsFiles> Relay(const std::string& name) { return Issue("relay", name); }
  absl::StatusOr<TlsFiles> Admin(const std::string& name) { return Issue("admin", name); }

 private:
  DevPki* pki_;
  std::string tenant_;
};

// One service in a connector's config (a ferry.v1.ServiceSpec).
struct FabricService {
  FabricService() = default;
  FabricService(std::string name, v1::Protocol protocol, std::vector<std::string> backends,
                uint32_t port = 0)
      : name(std::move(name)), protocol(protocol), backends(std::move(backends)), port(port) {}

  std::string name;
  v1::Protocol protocol = v1::PROTOCOL_UDP;
  // "127.0.0.1:port" of each backend.
  std::vector<std::string> backends;
  // The service's port; 0 leaves it out (the first backend's port).
  uint32_t port = 0;
  // The service's health_check; unset leaves it out (no checks).
  std::optional<v1::HealthCheck> health_check;
};

struct ConnectorSpec {
  ConnectorSpec() = default;
  ConnectorSpec(std::string tenant, std::string name, std::vector<FabricService> services,
                int workers = 1)
      : tenant(std::move(tenant)),
        name(std::move(name)),
        services(std::move(services)),
        workers(workers) {}

  std::string tenant;
  std::string name;
  std::vector<FabricService> services;
  int workers = 1;
  // More top-level lines of the connector's YAML (e.g. "dns_servers: [...]\n").
  std::string extra_yaml;
};

struct AgentSpec {
  AgentSpec() = default;
  AgentSpec(std::string tenant, std::string name, std::vector<std::string> exposures)
      : tenant(std::move(tenant)), name(std::move(name)), exposures(std::move(exposures)) {}

  std::string tenant;
  std::string name;
  // Names of the services to expose, each on 127.0.0.1:0.
  std::vector<std::string> exposures;
  // More flags for the agent (e.g. "--intercept"), after the harness's own.
  std::vector<std::string> extra_flags;
  // Expose each service as "--expose=<service>" with no listen address, so
  // the agent picks it (127.0.0.1:<service port>, or the VIP in intercept
  // mode); the default false keeps 127.0.0.1:0.
  bool default_listen = false;
};

struct FabricOptions {
  // The relay's identity is kFabricOperatorTenant/relay/<relay_name>.
  std::string relay_name = "relay-1";
  int relay_workers = 2;
  std::vector<ConnectorSpec> connectors;
  std::vector<AgentSpec> agents;
  // The Intermediate's options; operator_tenant is set to kFabricOperatorTenant.
  IntermediateOptions intermediate;
  // Bound on each process's readiness, and on the wait for routes.
  absl::Duration ready_timeout = absl::Seconds(30);
};

// A started relay, connector or agent and what its ready file said.
class FabricProcess {
 public:
  FabricProcess(std::string name, std::string binary, std::vector<std::string> flags);

  const std::string& name() const { return name_; }
  // The ready file's value for `key`; "" when absent.
  std::string Ready(absl::string_view key) const;
  const std::map<std::string, std::string>& ready() const { return ready_; }

  // "127.0.0.1:<port>" from the ready file (relay and connector; an agent has
  // admin_address only).
  std::string udp_address() const { return Ready("udp_address"); }
  std::string stream_address() const { return Ready("stream_address"); }
  std::string admin_address() const { return Ready("admin_address"); }
  // An agent's local listener for `service` (ready key "expose.<service>").
  std::string exposure(const std::string& service) const { return Ready("expose." + service); }

  FerryProcess& process() { return *process_; }
  // Sends `signal` (e.g. SIGHUP) to the process. FAILED_PRECONDITION when it
  // is not running.
  absl::Status Signal(int signal);

 private:
  friend class Fabric;
  // Starts a fresh FerryProcess with `flags` and waits for a ready file
  // holding every key of `required`. The FerryProcess errors; INTERNAL naming
  // the missing key.
  absl::Status Launch(std::vector<std::string> flags, const std::vector<std::string>& required,
                      absl::Duration timeout);

  std::string name_;
  std::string binary_;
  std::unique_ptr<FerryProcess> process_;
  std::map<std::string, std::string> ready_;
};

class Fabric {
 public:
  // Starts the fabric described by `options` (see the file comment) with
  // certificates from `pki`, which must outlive the Fabric. The first error of
  // a process that does not start (with its log tail), or DEADLINE_EXCEEDED
  // when routes do not settle within options.ready_timeout; the processes
  // already started are stopped.
  static absl::StatusOr<std::unique_ptr<Fabric>> Start(DevPki& pki, FabricOptions options);

  // Stops agents, connectors, the relay and the Intermediate, in that order.
  ~Fabric();
  Fabric(const Fabric&) = delete;
  Fabric& operator=(const Fabric&) = delete;

  IntermediateProcess& intermediate() { return *intermediate_; }
  FabricProcess& relay() { return *relay_; }
  // The connector or agent started under `name`. An unknown name is a bug in
  // the test: aborts with a message.
  FabricProcess& connector(const std::string& name);
  FabricProcess& agent(const std::string& name);
  // The relay, the connectors and the agents, in start order (e.g. to scrape
  // every admin address when a test fails). Valid until the next Start*/Restart*.
  std::vector<FabricProcess*> data_plane_processes();
  // Path of connector `name`'s YAML config.
  std::string connector_config(const std::string& name) const;

  // Certificates of `tenant`'s parties from the fabric's DevPki.
  TenantPki Tenant(const std::string& tenant) { return TenantPki(*pki_, tenant); }
  // An mTLS channel to the Intermediate as tenant/role/name (e.g. to open
  // sessions as an agent): the certificate and channel errors.
  absl::StatusOr<std::shared_ptr<grpc::Channel>> Channel(const std::string& tenant,
                                                         const std::string& role,
                                                         const std::string& name);

  // Starts one more agent (its name must be new). Process errors as Start.
  absl::Status StartAgent(const AgentSpec& spec);

  // Rewrites connector `name`'s config with `services` (atomically: temp file
  // and rename) and sends it SIGHUP. Returns once the signal is sent; the
  // connector applies the change on its own time (watch its
  // ferry_connector_route_version). NOT_FOUND for an unknown connector;
  // the write error.
  absl::Status UpdateConnectorServices(const std::string& name,
                                       const std::vector<FabricService>& services);
  // The same, without the SIGHUP: the connector must notice the rename
  // itself (inotify), as it does when an editor saves the file.
  absl::Status RewriteConnectorServices(const std::string& name,
                                        const std::vector<FabricService>& services);
  // Replaces connector `name`'s config file with `text` as it is (temp file
  // and rename), e.g. an invalid edit. NOT_FOUND for an unknown connector.
  absl::Status WriteConnectorConfigText(const std::string& name, const std::string& text);

  // Stops the relay and starts it again on the same UDP, stream and admin
  // addresses (agents and connectors keep theirs), waiting for its ready
  // file. Does not wait for routes (see WaitRouted).
  absl::Status RestartRelay();
  // Stops the Intermediate and starts it again with the same state directory
  // and gRPC address (its admin and DNS ports are new).
  absl::Status RestartIntermediate();

  // Polls the Intermediate (as an operator admin) until every connector is
  // connected, every configured service is registered with its connector,
  // and the relay is connected and has ACKed the current route version.
  // DEADLINE_EXCEEDED with what is still missing after `timeout`.
  absl::Status WaitRouted(absl::Duration timeout);

 private:
  struct Connector {
    ConnectorSpec spec;
    std::string config_path;
    std::unique_ptr<FabricProcess> process;
  };

  Fabric(DevPki& pki, FabricOptions options) : pki_(&pki), options_(std::move(options)) {}
  absl::Status StartRelay(const std::string& udp, const std::string& stream,
                          const std::string& admin);
  absl::Status StartConnector(const ConnectorSpec& spec);
  absl::Status WriteConnectorConfig(const Connector& connector);
  // What WaitRouted still waits for; empty when routed.
  absl::StatusOr<std::string> Unrouted();

  DevPki* pki_;
  FabricOptions options_;
  std::unique_ptr<IntermediateProcess> intermediate_;
  std::unique_ptr<FabricProcess> relay_;
  std::vector<Connector> connectors_;
  std::vector<std::unique_ptr<FabricProcess>> agents_;
};

// The YAML ferry.v1.ConnectorConfig of a connector that dials `intermediate`
// with `tls` and serves `services` (what Fabric writes; exposed for tests of
// the harness itself).
std::string ConnectorConfigYaml(const std::string& intermediate, const TlsFiles& tls,
                                const std::vector<FabricService>& services,
                                const std::string& extra_yaml = "");

}  // namespace ferry::harness
