// ferry-intermediate: the control plane. Serves the Registry, Routes, Sessions
// and Admin gRPC services over mutual TLS (plus reflection and grpc.health.v1), and
// /metrics, /healthz and /readyz on a separate admin HTTP port.
#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/admin_http_server.h"
#include "common/listen_address.h"
#include "common/process.h"
#include "common/service_spec_validation.h"
#include "common/tls_files.h"
#include "controlplane/admin_service.h"
#include "controlplane/dns_server.h"
#include "controlplane/embedded_state_store.h"
#include "controlplane/intermediate_metrics.h"
#include "controlplane/peer_authenticator.h"
#include "controlplane/registry_service.h"
#include "controlplane/routes_service.h"
#include "controlplane/rpc_metrics_interceptor.h"
#include "controlplane/server_credentials.h"
#include "controlplane/service_registry.h"
#include "controlplane/sessions_service.h"
#include "controlplane/signal_hub.h"
#include "controlplane/vip_allocator.h"
#include "glog/logging.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7443",
          "gRPC listen address (host:port; port 0 picks one).");
ABSL_FLAG(std::string, admin_listen, "127.0.0.1:7444",
          "Admin HTTP listen address for /metrics, /healthz and /readyz.");
ABSL_FLAG(std::string, ca_cert, "", "PEM CA certificate that signs every party's certificate.");
ABSL_FLAG(std::string, cert, "", "PEM server certificate of the Intermediate.");
ABSL_FLAG(std::string, key, "", "PEM private key of the Intermediate.");
ABSL_FLAG(std::string, trust_domain, "ferry.local", "SPIFFE trust domain of accepted peers.");
ABSL_FLAG(std::string, state_dir, ".ferry/state", "Directory of the durable state.");
ABSL_FLAG(std::string, operator_tenant, "",
          "Tenant whose admins may act on every tenant (empty: none).");
ABSL_FLAG(absl::Duration, connector_grace, absl::Seconds(10),
          "How long a disconnected connector's services stay routed.");
ABSL_FLAG(absl::Duration, keepalive_interval, absl::Seconds(5),
          "Keepalive interval asked of connectors; three missed ones end the stream.");
ABSL_FLAG(std::string, vip_pools, "10.100.0.0/24",
          "Comma-separated IPv4 CIDRs (/8 to /30) that service VIPs are leased from, open to "
          "every tenant. The network, broadcast and first host (gateway) are never leased.");
ABSL_FLAG(absl::Duration, vip_cooldown, absl::Seconds(60),
          "How long a released VIP is kept from other services; at least the DNS TTL.");
ABSL_FLAG(std::string, dns_zone, "ferry.internal",
          "DNS zone of service names: <service>.<tenant>.<zone>.");
ABSL_FLAG(std::string, dns_listen, "127.0.0.1:7453",
          "DNS listen address (UDP and TCP) answering <service>.<tenant>.<zone>.");
ABSL_FLAG(absl::Duration, dns_ttl, absl::Seconds(30), "TTL of DNS answers.");
ABSL_FLAG(absl::Duration, session_ttl, absl::Hours(1),
          "Lifetime of a data-plane session from Sessions.OpenSession; agents open a new one "
          "before it ends. Sessions live in memory: a restart drops them.");
ABSL_FLAG(int32_t, max_sessions_per_agent, 64,
          "Live data-plane sessions one agent identity may hold; OpenSession beyond it is "
          "RESOURCE_EXHAUSTED.");
ABSL_FLAG(bool, insecure_dev_mode, false,
          "Serve plaintext gRPC on a loopback address, identities taken from the "
          "x-ferry-dev-identity header. For local experiments only.");

namespace ferry {
namespace {

bool IsLoopbackListen(const std::string& address) {
  std::string host;
  uint16_t port = 0;
  if (!SplitHostPort(address, &host, &port, PortRule::kAllowZero)) return false;
  return absl::StartsWith(host, "127.") || host == "localhost" || host == "::1";
}

int Run() {
  const std::string listen = absl::GetFlag(FLAGS_listen);
  const bool insecure = absl::GetFlag(FLAGS_insecure_dev_mode);
  const std::string trust_domain = absl::GetFlag(FLAGS_trust_domain);

  auto metrics = std::make_unique<IntermediateMetrics>(std::make_shared<prometheus::Registry>());

  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (insecure) {
    if (!IsLoopbackListen(listen)) {
      LOG(ERROR) << "--insecure_dev_mode refuses the non-loopback listen address " << listen
                 << "; use 127.0.0.1 or [::1], or drop --insecure_dev_mode and use mTLS";
      return 2;
    }
    LOG(WARNING) << "INSECURE DEV MODE: plaintext gRPC without client certificates on " << listen
                 << "; identities are taken from the " << kDevIdentityHeader
                 << " header. Never use this outside a local experiment.";
    credentials = grpc::InsecureServerCredentials();
  } else {
    TlsFiles files{absl::GetFlag(FLAGS_ca_cert), absl::GetFlag(FLAGS_cert),
                   absl::GetFlag(FLAGS_key)};
    IntermediateMetrics* m = metrics.get();
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> tls =
        MakeServerCredentials(files, [m](absl::string_view reason, absl::string_view detail) {
          m->CountAuthFailure(reason);
          LOG(WARNING) << "Refused TLS handshake (" << reason << "): " << detail;
        });
    if (!tls.ok()) {
      LOG(ERROR) << "Cannot set up mutual TLS: " << tls.status();
      return 2;
    }
    credentials = *std::move(tls);
  }

  absl::StatusOr<std::unique_ptr<controlplane::EmbeddedStateStore>> store =
      controlplane::EmbeddedStateStore::Open(absl::GetFlag(FLAGS_state_dir));
  if (!store.ok()) {
    LOG(ERROR) << "Cannot open the state store: " << store.status();
    return 1;
  }
  ServiceRegistry::Options options;
  options.connector_grace = absl::GetFlag(FLAGS_connector_grace);
  options.keepalive_interval = absl::GetFlag(FLAGS_keepalive_interval);
  absl::StatusOr<std::vector<v1::VipPool>> pools =
      controlplane::VipPoolsFromCidrList(absl::GetFlag(FLAGS_vip_pools));
  if (!pools.ok()) {
    LOG(ERROR) << "--vip_pools: " << pools.status();
    return 2;
  }
  options.vip_pools = *std::move(pools);
  options.vip_cooldown = absl::GetFlag(FLAGS_vip_cooldown);
  if (options.vip_cooldown < absl::GetFlag(FLAGS_dns_ttl)) {
    // A resolver may cache the old answer for a TTL; the address must not
    // point at another service before that cache expires.
    LOG(ERROR) << "--vip_cooldown (" << options.vip_cooldown << ") must be at least --dns_ttl ("
               << absl::GetFlag(FLAGS_dns_ttl) << ")";
    return 2;
  }
  options.dns_zone = absl::GetFlag(FLAGS_dns_zone);
  options.session_ttl = absl::GetFlag(FLAGS_session_ttl);
  options.max_sessions_per_agent = absl::GetFlag(FLAGS_max_sessions_per_agent);
  absl::StatusOr<std::unique_ptr<ServiceRegistry>> registry =
      ServiceRegistry::Create(store->get(), metrics.get(), options);
  if (!registry.ok()) {
    LOG(ERROR) << "Cannot load the registry: " << registry.status();
    // Bad --vip_pools, --vip_cooldown, --dns_zone, --session_ttl or
    // --max_sessions_per_agent is a usage error.
    return absl::IsInvalidArgument(registry.status()) ? 2 : 1;
  }

  PeerAuthenticator auth(trust_domain, absl::GetFlag(FLAGS_operator_tenant), insecure,
                         metrics.get());
  // Declared before the services, so destroyed after them.
  SignalHub signal_hub(registry->get(), metrics.get());
  RegistryService registry_service(registry->get(), &auth, &signal_hub);
  RoutesService routes_service(registry->get(), &auth, metrics.get());
  SessionsService sessions_service(registry->get(), &auth, metrics.get(), &signal_hub);
  AdminService admin_service(registry->get(), &routes_service, &auth, trust_domain);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, credentials, &port);
  builder.RegisterService(&registry_service);
  builder.RegisterService(&routes_service);
  builder.RegisterService(&sessions_service);
  builder.RegisterService(&admin_service);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(MakeRpcMetricsInterceptorFactory(metrics.get()));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    LOG(ERROR) << "Cannot listen on " << listen << " (address in use or invalid)";
    return 1;
  }
  const std::string bound = BoundAddress(listen, port);

  std::atomic<bool> ready{true};
  AdminHttpServer admin_http;
  admin_http.ServeMetrics(metrics->registry());
  admin_http.ServeHealth([&ready] { return ready.load(); });
  if (absl::Status s = admin_http.Start(absl::GetFlag(FLAGS_admin_listen)); !s.ok()) {
    LOG(ERROR) << "Cannot start the admin HTTP server: " << s;
    server->Shutdown();
    return 1;
  }
  const std::string admin_listen = absl::GetFlag(FLAGS_admin_listen);
  const std::string admin_bound = BoundAddress(admin_listen, admin_http.port());

  DnsServer::Options dns_options;
  dns_options.zone = absl::GetFlag(FLAGS_dns_zone);
  dns_options.ttl = absl::GetFlag(FLAGS_dns_ttl);
  ServiceRegistry* registry_ptr = registry->get();
  absl::StatusOr<std::unique_ptr<DnsServer>> dns = DnsServer::Create(
      dns_options,
      [registry_ptr](absl::string_view tenant, absl::string_view service) {
        return registry_ptr->ResolveVip(std::string(tenant), std::string(service));
      },
      metrics->registry());
  if (!dns.ok()) {
    LOG(ERROR) << "DNS: " << dns.status();
    server->Shutdown();
    return 2;
  }
  const std::string dns_listen = absl::GetFlag(FLAGS_dns_listen);
  if (absl::Status s = (*dns)->Start(dns_listen); !s.ok()) {
    LOG(ERROR) << "Cannot start DNS on " << dns_listen << ": " << s;
    server->Shutdown();
    return 1;
  }
  const std::string dns_bound = BoundAddress(dns_listen, (*dns)->port());

  absl::Notification stop_ticker;
  std::thread ticker([&] {
    while (!stop_ticker.WaitForNotificationWithTimeout(absl::Milliseconds(200))) {
      (*registry)->Tick();
    }
  });

  LOG(INFO) << "Intermediate serving gRPC on " << bound << (insecure ? " (INSECURE)" : " (mTLS)")
            << ", admin HTTP on " << admin_bound << ", DNS on " << dns_bound << ", trust domain "
            << trust_domain;
  if (absl::Status s = WriteReadyFile(
          {{"grpc_address", bound}, {"admin_address", admin_bound}, {"dns_address", dns_bound}});
      !s.ok()) {
    LOG(ERROR) << s;
  }

  WaitForShutdownSignal();

  // Shutdown order: stop taking RPCs (streams are cancelled), then the timer,
  // then the admin port; the registry and store go last, when nothing uses them.
  ready = false;
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  server->Wait();
  stop_ticker.Notify();
  ticker.join();
  (*dns)->Stop();
  admin_http.Stop();
  LOG(INFO) << "Intermediate stopped";
  return 0;
}

}  // namespace
}  // namespace ferry

int main(int argc, char** argv) {
  ferry::InitProcess(argc, argv,
                     "ferry-intermediate: Ferry's control plane.\n"
                     "  ferry-intermediate --ca_cert ca.crt --cert server.crt --key server.key");
  return ferry::Run();
}
