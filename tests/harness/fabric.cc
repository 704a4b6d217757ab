#include "tests/harness/fabric.h"

#include <signal.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "ferry/v1/admin.grpc.pb.h"
#include "google/protobuf/util/json_util.h"
#include "tests/harness/channels.h"

namespace ferry::harness {
namespace {

constexpr char kOperatorAdmin[] = "fabric-harness";

// A double-quoted YAML scalar.
std::string Quoted(absl::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

[[noreturn]] void DieUnknown(absl::string_view kind, absl::string_view name) {
  std::cerr << "Fabric has no " << kind << " named \"" << name << "\" (a bug in the test)\n";
  std::abort();
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
    out.close();
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(
        absl::StrCat("cannot rename ", tmp, " to ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

std::vector<std::string> TlsFlags(const TlsFiles& tls) {
  return {"--ca_cert=" + tls.ca_cert, "--cert=" + tls.cert, "--key=" + tls.key};
}

}  // namespace

std::string ConnectorConfigYaml(const std::string& intermediate, const TlsFiles& tls,
                                const std::vector<FabricService>& services,
                                const std::string& extra_yaml) {
  std::string yaml =
      absl::StrCat("# Written by tests/harness/fabric.cc (schema: ferry.v1.ConnectorConfig).\n",
                   "intermediates:\n  - ", Quoted(intermediate), "\n",  //
                   "tls:\n",                                            //
                   "  ca_cert: ", Quoted(tls.ca_cert), "\n",            //
                   "  cert: ", Quoted(tls.cert), "\n",                  //
                   "  key: ", Quoted(tls.key), "\n", extra_yaml);
  if (services.empty()) return yaml + "services: []\n";
  yaml += "services:\n";
  for (const FabricService& service : services) {
    absl::StrAppend(&yaml, "  - name: ", Quoted(service.name), "\n",
                    "    protocol: ", v1::Protocol_Name(service.protocol), "\n");
    if (service.port != 0) absl::StrAppend(&yaml, "    port: ", service.port, "\n");
    if (service.health_check.has_value()) {
      // JSON is YAML's flow style: the proto's JSON form is a valid stanza.
      std::string json;
      google::protobuf::util::JsonPrintOptions options;
      options.preserve_proto_field_names = true;
      (void)google::protobuf::util::MessageToJsonString(*service.health_check, &json, options);
      absl::StrAppend(&yaml, "    health_check: ", json, "\n");
    }
    yaml += "    backends:\n";
    for (const std::string& backend : service.backends) {
      absl::StrAppend(&yaml, "      - address: ", Quoted(backend), "\n");
    }
  }
  return yaml;
}

// --- FabricProcess ------------------------------------------------------------

FabricProcess::FabricProcess(std::string name, std::string binary, std::vector<std::string> flags)
    : name_(std::move(name)),
      binary_(std::move(binary)),
      process_(std::make_unique<FerryProcess>(name_, binary_, std::move(flags))) {}

std::string FabricProcess::Ready(absl::string_view key) const {
  auto it = ready_.find(std::string(key));
  return it == ready_.end() ? "" : it->second;
}

absl::Status FabricProcess::Signal(int signal) {
  if (!process_->running()) {
    return absl::FailedPreconditionError(absl::StrCat(name_, " is not running"));
  }
  if (kill(process_->pid(), signal) != 0) {
    return absl::InternalError(
        absl::StrCat("kill ", process_->pid(), " (", name_, "): ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status FabricProcess::Launch(std::vector<std::string> flags,
                                   const std::vector<std::string>& required,
                                   absl::Duration timeout) {
  // A restart replaces the process; the old one's directory (and logs) stay.
  process_ = std::make_unique<FerryProcess>(name_, binary_, std::move(flags));
  ready_.clear();
  if (absl::Status s = process_->Start(); !s.ok()) return s;
  absl::StatusOr<std::map<std::string, std::string>> ready = process_->WaitReady(timeout);
  if (!ready.ok()) return ready.status();
  for (const std::string& key : required) {
    auto it = ready->find(key);
    if (it == ready->end() || it->second.empty()) {
      return absl::InternalError(
          absl::StrCat(name_, "'s ready file has no ", key, ":\n", process_->LogTail()));
    }
  }
  ready_ = *std::move(ready);
  return absl::OkStatus();
}

// --- Fabric -------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Fabric>> Fabric::Start(DevPki& pki, FabricOptions options) {
  options.intermediate.operator_tenant = kFabricOperatorTenant;
  std::unique_ptr<Fabric> fabric(new Fabric(pki, std::move(options)));
  const FabricOptions& opts = fabric->options_;

  absl::StatusOr<std::unique_ptr<IntermediateProcess>> intermediate =
      IntermediateProcess::Start(pki, opts.intermediate, opts.ready_timeout);
  if (!intermediate.ok()) return intermediate.status();
  fabric->intermediate_ = *std::move(intermediate);

  if (absl::Status s = fabric->StartRelay("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"); !s.ok()) {
    return s;
  }
  for (const ConnectorSpec& spec : opts.connectors) {
    if (absl::Status s = fabric->StartConnector(spec); !s.ok()) return s;
  }
  if (absl::Status s = fabric->WaitRouted(opts.ready_timeout); !s.ok()) {
    // Whoever did not get routed says why in its logs.
    std::string tails = absl::StrCat(s.message(), "\n--- ", fabric->relay_->name(), " ---\n",
                                     fabric->relay_->process().LogTail(4096));
    for (Connector& connector : fabric->connectors_) {
      absl::StrAppend(&tails, "\n--- ", connector.process->name(), " ---\n",
                      connector.process->process().LogTail(4096));
    }
    return absl::Status(s.code(), tails);
  }
  for (const AgentSpec& spec : opts.agents) {
    if (absl::Status s = fabric->StartAgent(spec); !s.ok()) return s;
  }
  return fabric;
}

Fabric::~Fabric() {
  agents_.clear();
  connectors_.clear();
  relay_.reset();
  intermediate_.reset();
}

FabricProcess& Fabric::connector(const std::string& name) {
  for (Connector& connector : connectors_) {
    if (connector.spec.name == name) return *connector.process;
  }
  DieUnknown("connector", name);
}

FabricProcess& Fabric::agent(const std::string& name) {
  for (auto& agent : agents_) {
    if (agent->name() == "agent-" + name) return *agent;
  }
  DieUnknown("agent", name);
}

std::vector<FabricProcess*> Fabric::data_plane_processes() {
  std::vector<FabricProcess*> processes;
  if (relay_ != nullptr) processes.push_back(relay_.get());
  for (Connector& connector : connectors_) processes.push_back(connector.process.get());
  for (auto& agent : agents_) processes.push_back(agent.get());
  return processes;
}

std::string Fabric::connector_config(const std::string& name) const {
  for (const Connector& connector : connectors_) {
    if (connector.spec.name == name) return connector.config_path;
  }
  DieUnknown("connector", name);
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> Fabric::Channel(const std::string& tenant,
                                                               const std::string& role,
                                                               const std::string& name) {
  absl::StatusOr<TlsFiles> files = pki_->Issue(tenant, role, name);
  if (!files.ok()) return files.status();
  return MtlsChannel(intermediate_->grpc_address(), *files);
}

absl::Status Fabric::StartRelay(const std::string& udp, const std::string& stream,
                                const std::string& admin) {
  absl::StatusOr<std::string> binary = RunfilesPath("dataplane/ferry-relay");
  if (!binary.ok()) return binary.status();
  absl::StatusOr<TlsFiles> tls = pki_->Issue(kFabricOperatorTenant, "relay", options_.relay_name);
  if (!tls.ok()) return tls.status();
  std::vector<std::string> flags = {
      "--intermediate=" + intermediate_->grpc_address(),
      "--name=" + options_.relay_name,
      "--listen=" + udp,
      "--stream_listen=" + stream,
      "--admin_listen=" + admin,
      absl::StrCat("--workers=", options_.relay_workers),
  };
  for (std::string& flag : TlsFlags(*tls)) flags.push_back(std::move(flag));
  if (relay_ == nullptr) {
    relay_ = std::make_unique<FabricProcess>("relay-" + options_.relay_name, *binary,
                                             std::vector<std::string>{});
  }
  return relay_->Launch(std::move(flags), {"udp_address", "stream_address", "admin_address"},
                        options_.ready_timeout);
}

absl::Status Fabric::WriteConnectorConfig(const Connector& connector) {
  absl::StatusOr<TlsFiles> tls =
      pki_->Issue(connector.spec.tenant, "connector", connector.spec.name);
  if (!tls.ok()) return tls.status();
  return WriteFileAtomically(
      connector.config_path,
      ConnectorConfigYaml(intermediate_->grpc_address(), *tls, connector.spec.services,
                          connector.spec.extra_yaml));
}

absl::Status Fabric::StartConnector(const ConnectorSpec& spec) {
  absl::StatusOr<std::string> binary = RunfilesPath("dataplane/ferry-connector");
  if (!binary.ok()) return binary.status();
  absl::StatusOr<std::string> dir = MakeTempDir("connector-config-" + spec.name);
  if (!dir.ok()) return dir.status();
  Connector connector;
  connector.spec = spec;
  connector.config_path = *dir + "/connector.yaml";
  if (absl::Status s = WriteConnectorConfig(connector); !s.ok()) return s;
  connector.process = std::make_unique<FabricProcess>("connector-" + spec.name, *binary,
                                                      std::vector<std::string>{});
  std::vector<std::string> flags = {
      "--config=" + connector.config_path,
      "--listen=127.0.0.1:0",
      "--stream_listen=127.0.0.1:0",
      "--admin_listen=127.0.0.1:0",
      absl::StrCat("--workers=", spec.workers),
  };
  // Kept before Launch, so that a connector that fails to start is still
  // stopped (and its log tail printed) with the fabric.
  connectors_.push_back(std::move(connector));
  return connectors_.back().process->Launch(
      std::move(flags), {"udp_address", "stream_address", "admin_address"}, options_.ready_timeout);
}

absl::Status Fabric::StartAgent(const AgentSpec& spec) {
  for (const auto& agent : agents_) {
    if (agent->name() == "agent-" + spec.name) {
      return absl::AlreadyExistsError(absl::StrCat("the fabric already has agent ", spec.name));
    }
  }
  absl::StatusOr<std::string> binary = RunfilesPath("agent/ferry-agent");
  if (!binary.ok()) return binary.status();
  absl::StatusOr<TlsFiles> tls = pki_->Issue(spec.tenant, "agent", spec.name);
  if (!tls.ok()) return tls.status();
  std::vector<std::string> flags = {
      "--intermediate=" + intermediate_->grpc_address(),
      "--admin_listen=127.0.0.1:0",
  };
  for (std::string& flag : TlsFlags(*tls)) flags.push_back(std::move(flag));
  std::vector<std::string> required = {"admin_address"};
  for (const std::string& service : spec.exposures) {
    flags.push_back(spec.default_listen ? absl::StrCat("--expose=", service)
                                        : absl::StrCat("--expose=", service, "=127.0.0.1:0"));
    required.push_back("expose." + service);
  }
  for (const std::string& flag : spec.extra_flags) flags.push_back(flag);
  agents_.push_back(
      std::make_unique<FabricProcess>("agent-" + spec.name, *binary, std::vector<std::string>{}));
  return agents_.back()->Launch(std::move(flags), required, options_.ready_timeout);
}

absl::Status Fabric::UpdateConnectorServices(const std::string& name,
                                             const std::vector<FabricService>& services) {
  for (Connector& connector : connectors_) {
    if (connector.spec.name != name) continue;
    connector.spec.services = services;
    if (absl::Status s = WriteConnectorConfig(connector); !s.ok()) return s;
    return connector.process->Signal(SIGHUP);
  }
  return absl::NotFoundError(absl::StrCat("the fabric has no connector named ", name));
}

absl::Status Fabric::RewriteConnectorServices(const std::string& name,
                                              const std::vector<FabricService>& services) {
  for (Connector& connector : connectors_) {
    if (connector.spec.name != name) continue;
    connector.spec.services = services;
    return WriteConnectorConfig(connector);
  }
  return absl::NotFoundError(absl::StrCat("the fabric has no connector named ", name));
}

absl::Status Fabric::WriteConnectorConfigText(const std::string& name, const std::string& text) {
  for (Connector& connector : connectors_) {
    if (connector.spec.name == name) return WriteFileAtomically(connector.config_path, text);
  }
  return absl::NotFoundError(absl::StrCat("the fabric has no connector named ", name));
}

absl::Status Fabric::RestartRelay() {
  const std::string udp = relay_->udp_address();
  const std::string stream = relay_->stream_address();
  const std::string admin = relay_->admin_address();
  absl::StatusOr<ExitStatus> stopped = relay_->process().Stop();
  if (!stopped.ok()) return stopped.status();
  return StartRelay(udp, stream, admin);
}

absl::Status Fabric::RestartIntermediate() {
  IntermediateOptions options = options_.intermediate;
  options.state_dir = intermediate_->state_dir();
  options.listen = intermediate_->grpc_address();
  absl::StatusOr<ExitStatus> stopped = intermediate_->Stop();
  if (!stopped.ok()) return stopped.status();
  absl::StatusOr<std::unique_ptr<IntermediateProcess>> restarted =
      IntermediateProcess::Start(*pki_, options, options_.ready_timeout);
  if (!restarted.ok()) return restarted.status();
  // The old object goes only now: its destructor prints its log tail if the
  // test has failed, and the new one must not reuse its directory.
  intermediate_ = *std::move(restarted);
  return absl::OkStatus();
}

absl::StatusOr<std::string> Fabric::Unrouted() {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      Channel(kFabricOperatorTenant, "admin", kOperatorAdmin);
  if (!channel.ok()) return channel.status();
  std::unique_ptr<v1::Admin::Stub> admin = v1::Admin::NewStub(*channel);
  v1::GetStatusResponse status;
  grpc::Status rpc = admin->GetStatus(ContextWithDeadline(absl::Seconds(5)).get(),
                                      v1::GetStatusRequest(), &status);
  if (!rpc.ok()) return absl::StrCat("GetStatus failed: ", rpc.error_message());
  v1::ListServicesResponse services;
  rpc = admin->ListServices(ContextWithDeadline(absl::Seconds(5)).get(), v1::ListServicesRequest(),
                            &services);
  if (!rpc.ok()) return absl::StrCat("ListServices failed: ", rpc.error_message());

  std::vector<std::string> missing;
  std::set<std::pair<std::string, std::string>> connected;  // (tenant, name)
  for (const v1::Peer& peer : status.connectors()) {
    connected.emplace(peer.identity().tenant(), peer.identity().name());
  }
  // (tenant, service) -> serving connector
  std::map<std::pair<std::string, std::string>, std::string> registered;
  for (const v1::Service& service : services.services()) {
    registered[{service.spec().tenant(), service.spec().name()}] = service.connector();
  }
  for (const Connector& connector : connectors_) {
    const ConnectorSpec& spec = connector.spec;
    if (connected.count({spec.tenant, spec.name}) == 0) {
      missing.push_back(absl::StrCat("connector ", spec.tenant, "/", spec.name, " not connected"));
    }
    for (const FabricService& service : spec.services) {
      auto it = registered.find({spec.tenant, service.name});
      if (it == registered.end() || it->second != spec.name) {
        missing.push_back(
            absl::StrCat("service ", spec.tenant, "/", service.name, " not served by ", spec.name));
      }
    }
  }
  bool relay_seen = false;
  for (const v1::Peer& peer : status.relays()) {
    if (peer.identity().name() != options_.relay_name) continue;
    relay_seen = true;
    if (peer.acked_route_version() < status.route_version()) {
      missing.push_back(absl::StrCat("relay ", options_.relay_name, " ACKed route version ",
                                     peer.acked_route_version(), " of ", status.route_version()));
    }
  }
  if (!relay_seen) missing.push_back(absl::StrCat("relay ", options_.relay_name, " not watching"));
  return absl::StrJoin(missing, "; ");
}

absl::Status Fabric::WaitRouted(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::string last;
  while (true) {
    absl::StatusOr<std::string> unrouted = Unrouted();
    if (!unrouted.ok()) return unrouted.status();
    if (unrouted->empty()) return absl::OkStatus();
    last = *unrouted;
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat("the fabric was not routed after ",
                                                      absl::FormatDuration(timeout), ": ", last));
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
}

}  // namespace ferry::harness
