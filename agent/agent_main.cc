// ferry-agent: the client. For each exposed service it asks the Intermediate
// for a data-plane session (Sessions.OpenSession), binds a local listener
// (UDP or TCP, as the service is) and carries the traffic through the relay.
// The listener is on a loopback port, or in intercept mode on the service's
// VIP, which the agent puts on a local interface (docs/INTERCEPT.md).
// Sessions are renewed at half their lifetime, and re-opened when their relay
// stops answering probes (a relay or Intermediate restart).
#include <arpa/inet.h>
#include <linux/capability.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "agent/agent_worker.h"
#include "agent/icmp_intercept.h"
#include "agent/intercept_addresses.h"
#include "common/admin_http_server.h"
#include "common/backoff.h"
#include "common/grpc_status.h"
#include "common/intermediate_channel.h"
#include "common/listen_address.h"
#include "common/metrics.h"
#include "common/mutex_lock.h"
#include "common/naming.h"
#include "common/process.h"
#include "common/proto_time.h"
#include "dataplane/dataplane_metrics.h"
#include "dataplane/udp_socket_group.h"
#include "discovery/config_loader.h"
#include "ferry/v1/config.pb.h"
#include "ferry/v1/sessions.grpc.pb.h"
#include "glog/logging.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/client_context.h"

ABSL_FLAG(std::string, config, "", "Agent config file (YAML, ferry.v1.AgentConfig).");
ABSL_FLAG(std::string, intermediate, "",
          "Intermediate gRPC address; overrides the config (default 127.0.0.1:7443).");
ABSL_FLAG(std::string, ca_cert, "", "PEM CA certificate of the fabric.");
ABSL_FLAG(std::string, cert, "", "PEM certificate of this agent (role agent).");
ABSL_FLAG(std::string, key, "", "PEM private key of this agent.");
namespace ferry {
// --expose values; unlike absl's vector flags, repeating the flag adds to the
// list instead of replacing it.
struct ExposeList {
  std::vector<std::string> items;
};
bool AbslParseFlag(absl::string_view text, ExposeList* list, std::string* /*error*/) {
  // Occurrences are parsed in command-line order; each one adds its items.
  static std::vector<std::string>* const seen = new std::vector<std::string>();
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    seen->emplace_back(item);
  }
  list->items = *seen;
  return true;
}
std::string AbslUnparseFlag(const ExposeList& list) { return absl::StrJoin(list.items, ","); }
}  // namespace ferry

ABSL_FLAG(ferry::ExposeList, expose, {},
          "A service to expose, as service=host:port or just service (listens on "
          "127.0.0.1:<the service's port>); repeat the flag, or separate with commas.");
ABSL_FLAG(std::string, admin_listen, "127.0.0.1:0", "Admin HTTP address for /metrics.");
ABSL_FLAG(bool, intercept, false,
          "Intercept mode (or intercept: true in the config): each exposure without a listen "
          "address listens on its service's VIP and port, with the VIP put on "
          "--intercept_interface and removed at exit; ICMP services answer ping of the VIP. "
          "Needs CAP_NET_ADMIN (and CAP_NET_RAW for ICMP). See docs/INTERCEPT.md.");
ABSL_FLAG(std::string, intercept_interface, "",
          "Interface for the VIPs in intercept mode; overrides the config (default lo; ferry0 "
          "is created as a dummy link when missing, or falls back to lo).");

namespace ferry {
namespace {

using agent::AgentWorker;
using agent::InterceptAddresses;
using agent::SessionGrant;

struct ExposureState {
  std::string service;
  std::string listen;  // may be empty: 127.0.0.1:<port>
  bool bound = false;
  std::string bound_address;
  v1::Protocol protocol = v1::PROTOCOL_UNSPECIFIED;
  // Intercept mode: listening on the VIP; an ICMP exposure's fd is a raw
  // ICMP socket bound to it.
  bool on_vip = false;
  bool attempted = false;
  bool have_session = false;
  bool dead = false;
  absl::Time renew_at = absl::InfinitePast();
  absl::Time next_attempt = absl::InfinitePast();
  std::unique_ptr<Backoff> backoff = std::make_unique<Backoff>(absl::Seconds(1), absl::Seconds(30));
};

std::string FlagOr(const absl::Flag<std::string>& flag, const std::string& fallback) {
  std::string value = absl::GetFlag(flag);
  return value.empty() ? fallback : value;
}

absl::StatusOr<std::vector<ExposureState>> ParseExposures(const v1::AgentConfig& config) {
  std::vector<ExposureState> out;
  for (const v1::Exposure& e : config.exposures()) {
    ExposureState state;
    state.service = e.service();
    state.listen = e.listen();
    out.push_back(std::move(state));
  }
  for (const std::string& flag : absl::GetFlag(FLAGS_expose).items) {
    std::vector<std::string> parts = absl::StrSplit(flag, absl::MaxSplits('=', 1));
    ExposureState state;
    state.service = parts[0];
    if (parts.size() == 2) state.listen = parts[1];
    out.push_back(std::move(state));
  }
  for (const ExposureState& state : out) {
    if (absl::Status s = ValidateName(NameKind::kService, state.service); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("exposure \"", state.service, "\": ", s.message()));
    }
    if (!state.listen.empty()) {
      std::string host;
      uint16_t port = 0;
      if (absl::Status s = ParseHostPort(state.listen, PortRule::kAllowZero, &host, &port);
          !s.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("exposure \"", state.service, "\": listen address: ", s.message()));
      }
    }
  }
  return out;
}

absl::StatusOr<SessionGrant> OpenSession(v1::Sessions::Stub& stub, const std::string& service,
                                         v1::OpenSessionResponse* response) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::OpenSessionRequest request;
  request.set_service(service);
  grpc::Status status = stub.OpenSession(&context, request, response);
  if (!status.ok()) return FromGrpcStatus(status);
  SessionGrant grant;
  grant.session_id = response->agent_hop().session_id();
  grant.key = response->agent_hop().key();
  grant.service_id = response->service_id();
  absl::StatusOr<dataplane::SocketAddress> relay =
      dataplane::ParseSocketAddress(response->relay_address(), /*resolve=*/true);
  if (!relay.ok()) return relay.status();
  grant.relay_udp = *relay;
  grant.relay_stream = response->relay_stream_address();
  absl::Duration ttl = FromDurationProto(response->ttl());
  if (ttl <= absl::ZeroDuration()) ttl = absl::Minutes(10);
  grant.expires_at = absl::Now() + ttl;
  return grant;
}

// Intercept mode for one exposure: puts `vip` on the interface and returns
// the address to listen on ("<vip>:<port>"), or for an ICMP service the raw
// echo socket bound to the VIP in `*icmp_fd`.
absl::StatusOr<std::string> InterceptVip(ExposureState& state, InterceptAddresses& addresses,
                                         const std::string& vip, uint32_t service_port,
                                         UniqueFd* icmp_fd) {
  in_addr address;
  if (inet_pton(AF_INET, vip.c_str(), &address) != 1) {
    return absl::FailedPreconditionError(absl::StrCat("the Intermediate gave service ",
                                                      state.service, " no IPv4 VIP (got \"", vip,
                                                      "\"); intercept mode needs one"));
  }
  if (absl::Status s = addresses.Add(address); !s.ok()) return s;
  state.on_vip = true;
  if (state.protocol == v1::PROTOCOL_ICMP) {
    absl::StatusOr<UniqueFd> fd = agent::OpenEchoInterceptSocket(address);
    if (!fd.ok()) return fd.status();
    *icmp_fd = *std::move(fd);
    return vip;
  }
  return absl::StrCat(vip, ":", service_port);
}

// Binds the local listener of an exposure now that its protocol is known:
// `listen`, or 127.0.0.1:<service port> when empty. In intercept mode
// (`addresses` set) an exposure without a listen address gets its VIP.
absl::StatusOr<UniqueFd> BindExposure(ExposureState& state, uint32_t service_port,
                                      const std::string& vip, InterceptAddresses* addresses) {
  std::string listen =
      state.listen.empty() ? absl::StrCat("127.0.0.1:", service_port) : state.listen;
  if (addresses != nullptr && state.listen.empty()) {
    UniqueFd icmp_fd;
    absl::StatusOr<std::string> on_vip =
        InterceptVip(state, *addresses, vip, service_port, &icmp_fd);
    if (!on_vip.ok()) return on_vip.status();
    if (icmp_fd) {
      state.bound_address = *on_vip;
      state.bound = true;
      return icmp_fd;
    }
    listen = *on_vip;
  }
  int port = 0;
  UniqueFd fd;
  if (state.protocol == v1::PROTOCOL_TCP) {
    absl::StatusOr<UniqueFd> listener = dataplane::OpenTcpListener(listen, /*reuse_port=*/false);
    if (!listener.ok()) return listener.status();
    fd = *std::move(listener);
  } else {
    absl::StatusOr<dataplane::UdpSocketGroup> group = dataplane::OpenUdpSocketGroup(listen, 1);
    if (!group.ok()) return group.status();
    fd = std::move(group->sockets[0]);
  }
  absl::StatusOr<int> bound = LocalPort(fd.get());
  if (bound.ok()) port = *bound;
  state.bound_address = BoundAddress(listen, port);
  state.bound = true;
  return fd;
}

int Run() {
  v1::AgentConfig config;
  const std::string path = absl::GetFlag(FLAGS_config);
  if (!path.empty()) {
    absl::StatusOr<v1::AgentConfig> loaded = discovery::LoadConfigFile<v1::AgentConfig>(path);
    if (!loaded.ok()) {
      LOG(ERROR) << loaded.status().message();
      return 2;
    }
    config = *std::move(loaded);
  }
  absl::StatusOr<std::vector<ExposureState>> parsed = ParseExposures(config);
  if (!parsed.ok()) {
    LOG(ERROR) << parsed.status().message();
    return 2;
  }
  std::vector<ExposureState> exposures = *std::move(parsed);
  // Intercept mode: the capability is checked before anything else starts,
  // so that a missing one is one clear error, not a failure per exposure.
  std::unique_ptr<InterceptAddresses> intercept;
  if (absl::GetFlag(FLAGS_intercept) || config.intercept()) {
    if (absl::Status s = agent::RequireCapability(CAP_NET_ADMIN, "CAP_NET_ADMIN",
                                                  "Intercept mode (--intercept)");
        !s.ok()) {
      LOG(ERROR) << s.message();
      return 2;
    }
    std::string interface = FlagOr(FLAGS_intercept_interface, config.intercept_interface());
    if (interface.empty()) interface = agent::kDefaultInterceptInterface;
    absl::StatusOr<std::unique_ptr<InterceptAddresses>> opened =
        InterceptAddresses::Open(interface);
    if (!opened.ok()) {
      LOG(ERROR) << "Intercept mode: " << opened.status().message();
      return 2;
    }
    intercept = *std::move(opened);
    LOG(INFO) << "Intercept mode: VIPs go on " << intercept->interface();
  }
  const std::string intermediate =
      FlagOr(FLAGS_intermediate,
             config.intermediates().empty() ? "127.0.0.1:7443" : config.intermediates(0));
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      DialIntermediate(intermediate, TlsFiles{FlagOr(FLAGS_ca_cert, config.tls().ca_cert()),
                                              FlagOr(FLAGS_cert, config.tls().cert()),
                                              FlagOr(FLAGS_key, config.tls().key())});
  if (!channel.ok()) {
    LOG(ERROR) << channel.status();
    return 2;
  }
  // The first connection must succeed: a wrong certificate or address is a
  // mistake to report, not something to retry forever. Later outages (an
  // Intermediate restart) are retried.
  if (!(*channel)->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
    LOG(ERROR) << "Cannot establish mTLS with the Intermediate at " << intermediate
               << " (is it running, and is this certificate signed by its CA?)";
    return 1;
  }
  std::unique_ptr<v1::Sessions::Stub> stub = v1::Sessions::NewStub(*channel);

  // The worker's own UDP socket, for frames to and from relays.
  absl::StatusOr<dataplane::UdpSocketGroup> udp =
      dataplane::OpenUdpSocketGroup("0.0.0.0:0", 1, 4 * 1024 * 1024);
  if (!udp.ok()) {
    LOG(ERROR) << "Cannot open the agent's data-plane socket: " << udp.status();
    return 1;
  }
  absl::Mutex mu;
  bool poked = false;  // guarded by mu: the control loop has news
  std::vector<bool> dead_flags(exposures.size(), false);
  dataplane::WorkerOptions options;
  options.flow_capacity = 16384;
  AgentWorker worker(options, std::move(udp->sockets[0]), [&](size_t exposure) {
    MutexLock lock(&mu);
    dead_flags[exposure] = true;
    poked = true;
  });
  if (absl::Status s = worker.Init(); !s.ok()) {
    LOG(ERROR) << "Cannot start the agent's worker: " << s;
    return 1;
  }
  std::thread worker_thread([&worker] { worker.Run(); });

  auto registry = std::make_shared<prometheus::Registry>();
  dataplane::DataplaneMetrics metrics(*registry, "ferry_agent");
  prometheus::Gauge& sessions_gauge =
      AddGaugeFamily(*registry, "ferry_agent_sessions", "Data-plane sessions held.").Add({});
  auto& opens = AddCounterFamily(*registry, "ferry_agent_session_opens_total",
                                 "OpenSession calls by result (ok, error).");
  AdminHttpServer admin;
  admin.Handle("/metrics", [&](const HttpRequest&) {
    metrics.Update({&worker});
    sessions_gauge.Set(static_cast<double>(worker.sessions()));
    HttpResponse response;
    response.content_type = "text/plain; version=0.0.4; charset=utf-8";
    response.body = SerializeText(*registry);
    return response;
  });
  const std::string admin_listen = absl::GetFlag(FLAGS_admin_listen);
  if (absl::Status s = admin.Start(admin_listen); !s.ok()) {
    LOG(ERROR) << "Cannot start the admin HTTP server: " << s;
    worker.Stop();
    worker_thread.join();
    return 1;
  }
  const std::string admin_bound = BoundAddress(admin_listen, admin.port());

  // The control loop: opens, renews and re-opens sessions.
  std::atomic<bool> stopping{false};
  bool ready_written = false;
  size_t ready_bound = 0;
  std::map<uint32_t, std::pair<std::string, std::string>> names;
  auto control = [&] {
    while (!stopping.load()) {
      for (size_t i = 0; i < exposures.size(); ++i) {
        ExposureState& state = exposures[i];
        {
          MutexLock lock(&mu);
          if (dead_flags[i]) {
            dead_flags[i] = false;
            state.dead = true;
          }
        }
        const absl::Time now = absl::Now();
        const bool want = !state.have_session || state.dead || now >= state.renew_at;
        if (!want || now < state.next_attempt) continue;
        v1::OpenSessionResponse response;
        absl::StatusOr<SessionGrant> grant = OpenSession(*stub, state.service, &response);
        state.attempted = true;
        if (!grant.ok()) {
          opens.Add({{"result", "error"}}).Increment();
          absl::Duration wait = state.backoff->Next();
          LOG(WARNING) << "Cannot open a session for " << state.service << ": " << grant.status()
                       << "; retrying in " << absl::FormatDuration(wait);
          state.next_attempt = now + wait;
          continue;
        }
        opens.Add({{"result", "ok"}}).Increment();
        state.backoff->Reset();
        if (!state.bound) {
          state.protocol = response.protocol();
          absl::StatusOr<UniqueFd> fd =
              BindExposure(state, response.port(), response.vip(), intercept.get());
          if (!fd.ok()) {
            LOG(ERROR) << "Cannot listen for " << state.service << ": " << fd.status();
            state.next_attempt = now + absl::Seconds(30);
            continue;
          }
          auto shared_fd = std::make_shared<UniqueFd>(*std::move(fd));
          const bool echo = state.on_vip && state.protocol == v1::PROTOCOL_ICMP;
          worker.loop()->Post(
              [&worker, i, service = state.service, protocol = state.protocol, shared_fd, echo] {
                if (echo) {
                  worker.AddEchoExposure(i, service, std::move(*shared_fd));
                } else {
                  worker.AddExposure(i, service, protocol, std::move(*shared_fd));
                }
              });
          LOG(INFO) << "Serving " << state.service << " ("
                    << (state.protocol == v1::PROTOCOL_TCP    ? "tcp"
                        : state.protocol == v1::PROTOCOL_ICMP ? "icmp"
                                                              : "udp")
                    << ") on " << state.bound_address
                    << (state.on_vip ? absl::StrCat(" (VIP on ", intercept->interface(), ")") : "");
        }
        names[grant->service_id] = {state.service, ""};
        metrics.SetServiceNames(names);
        worker.loop()->Post([&worker, i, g = *grant] { worker.InstallSession(i, g); });
        state.have_session = true;
        state.dead = false;
        state.renew_at = now + (grant->expires_at - now) / 2;
        VLOG(1) << "Session for " << state.service << " via relay " << response.relay_address();
      }
      // The ready file: once every exposure had its first attempt, and again
      // whenever another exposure's listener is bound later.
      size_t bound = 0;
      bool all_attempted = true;
      std::map<std::string, std::string> ready = {{"admin_address", admin_bound},
                                                  {"intermediate", intermediate}};
      if (intercept != nullptr) ready["intercept_interface"] = intercept->interface();
      for (const ExposureState& state : exposures) {
        all_attempted = all_attempted && state.attempted;
        if (state.bound) {
          ready[absl::StrCat("expose.", state.service)] = state.bound_address;
          ++bound;
        }
      }
      if (all_attempted && (!ready_written || bound != ready_bound)) {
        // Let the worker register the listeners before anyone is told.
        absl::SleepFor(absl::Milliseconds(50));
        if (absl::Status s = WriteReadyFile(ready); !s.ok()) LOG(ERROR) << s;
        if (!ready_written) {
          LOG(INFO) << "Agent ready: " << bound << " of " << exposures.size()
                    << " exposures served via " << intermediate << "; admin HTTP on "
                    << admin_bound;
        }
        ready_written = true;
        ready_bound = bound;
      }
      MutexLock lock(&mu);
      AwaitWithTimeout(&mu, absl::Condition(&poked), absl::Milliseconds(200));
      poked = false;
    }
  };
  std::thread control_thread(control);

  WaitForShutdownSignal();
  stopping.store(true);
  {
    MutexLock lock(&mu);
    poked = true;
  }
  control_thread.join();
  admin.Stop();
  worker.Stop();
  worker_thread.join();
  if (intercept != nullptr) {
    const size_t removed = intercept->added().size();
    const std::string interface = intercept->interface();
    intercept.reset();  // the VIPs leave the interface
    LOG(INFO) << "Intercept: removed " << removed << " VIP(s) from " << interface;
  }
  LOG(INFO) << "Agent stopped";
  return 0;
}

}  // namespace
}  // namespace ferry

int main(int argc, char** argv) {
  ferry::InitProcess(argc, argv,
                     "ferry-agent: the client side of Ferry; exposes services locally.\n"
                     "  ferry-agent --intermediate 127.0.0.1:7443 --ca_cert ca.crt --cert "
                     "agent.crt --key agent.key --expose demo-web=127.0.0.1:8080");
  return ferry::Run();
}
