#include "controlplane/intermediate_metrics.h"

#include <utility>

#include "common/metrics.h"

namespace ferry {
namespace {

template <typename Builder>
auto& Build(Builder builder, const char* name, const char* help, prometheus::Registry& registry) {
  return builder.Name(name).Help(help).Register(registry);
}

std::map<std::string, std::string> Label(const char* key, absl::string_view value) {
  return {{key, std::string(value)}};
}

}  // namespace

IntermediateMetrics::IntermediateMetrics(std::shared_ptr<prometheus::Registry> registry)
    : registry_(std::move(registry)),
      auth_failures_(Build(prometheus::BuildCounter(), "ferry_auth_failures_total",
                           "Peers refused, by reason (TLS handshake or RPC).", *registry_)),
      rpcs_(Build(prometheus::BuildCounter(), "ferry_rpcs_total",
                  "Finished RPCs by method and status code.", *registry_)),
      rpc_latency_(Build(prometheus::BuildHistogram(), "ferry_rpc_duration_seconds",
                         "RPC duration by method (streams: their whole life).", *registry_)),
      connected_peers_(Build(prometheus::BuildGauge(), "ferry_connected_peers",
                             "Peers with an open stream, by role.", *registry_)),
      services_(Build(prometheus::BuildGauge(), "ferry_services",
                      "Services by aggregate health state.", *registry_)),
      signaling_messages_(Build(prometheus::BuildCounter(), "ferry_signaling_messages_total",
                                "Signaling messages relayed, by kind.", *registry_)),
      signaling_denials_(Build(prometheus::BuildCounter(), "ferry_signaling_denials_total",
                               "Signaling messages refused, by reason.", *registry_)),
      vip_pool_size_(Build(prometheus::BuildGauge(), "ferry_vip_pool_size",
                           "Assignable addresses in each VIP pool.", *registry_)),
      vip_pool_used_(Build(prometheus::BuildGauge(), "ferry_vip_pool_used",
                           "Leased addresses in each VIP pool.", *registry_)),
      sessions_refused_(Build(prometheus::BuildCounter(), "ferry_sessions_refused_total",
                              "Sessions.OpenSession calls refused, by reason.", *registry_)) {
  route_version_ = &Build(prometheus::BuildGauge(), "ferry_route_version",
                          "Current route snapshot version.", *registry_)
                        .Add({});
  route_push_latency_ =
      &Build(prometheus::BuildHistogram(), "ferry_route_push_latency_seconds",
             "Time from a route change to a watcher's ACK of the version holding it.", *registry_)
           .Add({}, LatencyBucketsSeconds());
  route_nacks_ = &Build(prometheus::BuildCounter(), "ferry_route_nacks_total",
                        "Route snapshots refused (NACKed) by watchers.", *registry_)
                      .Add({});
  sessions_open_ = &Build(prometheus::BuildGauge(), "ferry_sessions_open",
                          "Data-plane sessions held by the Intermediate.", *registry_)
                        .Add({});
  sessions_opened_ = &Build(prometheus::BuildCounter(), "ferry_sessions_opened_total",
                            "Data-plane sessions opened.", *registry_)
                          .Add({});
  for (const char* role : {"connector", "relay", "agent"}) ConnectedPeers(role).Set(0);
  for (const char* state : {"healthy", "unhealthy", "unknown"}) Services(state).Set(0);
}

void IntermediateMetrics::CountAuthFailure(absl::string_view reason) {
  auth_failures_.Add(Label("reason", reason)).Increment();
}

void IntermediateMetrics::ObserveRpc(absl::string_view method, absl::string_view code,
                                     double seconds) {
  rpcs_.Add({{"method", std::string(method)}, {"code", std::string(code)}}).Increment();
  rpc_latency_.Add(Label("method", method), LatencyBucketsSeconds()).Observe(seconds);
}

prometheus::Gauge& IntermediateMetrics::ConnectedPeers(absl::string_view role) {
  return connected_peers_.Add(Label("role", role));
}

prometheus::Gauge& IntermediateMetrics::Services(absl::string_view state) {
  return services_.Add(Label("state", state));
}

void IntermediateMetrics::CountSignalingMessage(absl::string_view kind) {
  signaling_messages_.Add(Label("kind", kind)).Increment();
}

void IntermediateMetrics::CountSignalingDenial(absl::string_view reason) {
  signaling_denials_.Add(Label("reason", reason)).Increment();
}

void IntermediateMetrics::CountSessionRefused(absl::string_view reason) {
  sessions_refused_.Add(Label("reason", reason)).Increment();
}

prometheus::Gauge& IntermediateMetrics::VipPoolSize(absl::string_view pool) {
  return vip_pool_size_.Add(Label("pool", pool));
}

prometheus::Gauge& IntermediateMetrics::VipPoolUsed(absl::string_view pool) {
  return vip_pool_used_.Add(Label("pool", pool));
}

}  // namespace ferry
