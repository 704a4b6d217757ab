#include "dataplane/connector_backends.h"

#include <netdb.h>

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/metrics.h"
#include "common/mutex_lock.h"
#include "glog/logging.h"

namespace ferry::dataplane {
namespace {

bool IsDiscovered(absl::string_view source) {
  return absl::StartsWith(source, "dns://") || absl::StartsWith(source, "srv://");
}

// The host part of "host:port", "[v6]:port", "dns://host:port" or a bare host.
std::string HostOf(absl::string_view source) {
  if (absl::StartsWith(source, "srv://")) return "";
  if (absl::StartsWith(source, "dns://")) source.remove_prefix(6);
  if (absl::StartsWith(source, "[")) {
    const size_t close = source.find(']');
    return std::string(source.substr(1, close == absl::string_view::npos ? 0 : close - 1));
  }
  const size_t colon = source.rfind(':');
  return std::string(colon == absl::string_view::npos ? source : source.substr(0, colon));
}

// "10.0.0.1" for ICMP services (their backends have no port), "10.0.0.1:80" otherwise.
std::string AddressText(const SocketAddress& address, bool bare) {
  if (!bare) return address.ToString();
  char host[NI_MAXHOST] = {};
  if (getnameinfo(address.get(), address.length, host, sizeof(host), nullptr, 0, NI_NUMERICHOST) !=
      0) {
    return address.ToString();
  }
  return host;
}

const char* HealthLabel(v1::HealthState state) {
  switch (state) {
    case v1::HEALTH_STATE_HEALTHY:
      return "healthy";
    case v1::HEALTH_STATE_UNHEALTHY:
      return "unhealthy";
    default:
      return "unknown";
  }
}

// The health monitor's key of one address of one service.
std::string TargetKey(const std::string& service, const std::string& address) {
  return absl::StrCat(service, " ", address);
}

bool SameList(const std::vector<v1::BackendStatus>& a, const std::vector<v1::BackendStatus>& b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](const auto& x, const auto& y) {
           return x.SerializeAsString() == y.SerializeAsString();
         });
}

}  // namespace

absl::StatusOr<std::unique_ptr<ConnectorBackends>> ConnectorBackends::Start(
    Options options, ChangeCallback on_change) {
  std::unique_ptr<ConnectorBackends> self(
      new ConnectorBackends(std::move(options), std::move(on_change)));
  ConnectorBackends* raw = self.get();

  discovery::DnsResolver::Options resolver_options;
  resolver_options.servers = self->options_.dns_servers;
  absl::StatusOr<std::unique_ptr<discovery::DnsResolver>> resolver =
      discovery::DnsResolver::Create(resolver_options);
  if (!resolver.ok()) return resolver.status();
  discovery::BackendDiscovery::Options discovery_options;
  discovery_options.min_ttl = self->options_.dns_min_ttl;
  discovery_options.max_ttl = self->options_.dns_max_ttl;
  discovery_options.registry = self->options_.registry;
  absl::StatusOr<std::unique_ptr<discovery::BackendDiscovery>> discovery =
      discovery::BackendDiscovery::Create(
          *std::move(resolver), discovery_options,
          [raw](const std::string& source, const std::vector<SocketAddress>& addresses) {
            MutexLock lock(&raw->mu_);
            raw->discovered_[source] = addresses;
            raw->dirty_ = true;
            raw->wake_.Signal();
          });
  if (!discovery.ok()) return discovery.status();
  self->discovery_ = *std::move(discovery);

  health::HealthMonitor::Options monitor_options;
  monitor_options.registry = self->options_.registry;
  absl::StatusOr<std::unique_ptr<health::HealthMonitor>> monitor = health::HealthMonitor::Start(
      monitor_options, [raw](const health::HealthTransition& transition) {
        LOG(INFO) << "Backend " << transition.key << ": " << HealthLabel(transition.from) << " -> "
                  << HealthLabel(transition.to) << " (" << transition.detail << ")";
        MutexLock lock(&raw->mu_);
        raw->dirty_ = true;
        raw->wake_.Signal();
      });
  if (!monitor.ok()) return monitor.status();
  self->monitor_ = *std::move(monitor);

  if (self->options_.registry != nullptr) {
    self->backends_family_ = &AddGaugeFamily(
        *self->options_.registry, "ferry_connector_backends",
        "Backends of each service by health (healthy, unhealthy, unknown), as the connector sees "
        "them; a service with none healthy or unknown is down.");
  }
  self->thread_ = std::thread([raw] { raw->Run(); });
  return self;
}

ConnectorBackends::ConnectorBackends(Options options, ChangeCallback on_change)
    : options_(std::move(options)), on_change_(std::move(on_change)) {}

ConnectorBackends::~ConnectorBackends() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    wake_.Signal();
  }
  if (thread_.joinable()) thread_.join();
  // The monitor and discovery threads call back into mu_: stop them first.
  monitor_.reset();
  discovery_.reset();
}

void ConnectorBackends::SetConfigServices(std::vector<v1::ServiceSpec> services) {
  SetServices(false, std::move(services));
}

void ConnectorBackends::SetApiServices(std::vector<v1::ServiceSpec> services) {
  SetServices(true, std::move(services));
}

void ConnectorBackends::SetServices(bool api, std::vector<v1::ServiceSpec> services) {
  // Static names resolve here, outside the lock (getaddrinfo may block).
  std::map<std::string, std::vector<SocketAddress>> resolved;
  for (const v1::ServiceSpec& spec : services) {
    const bool icmp = spec.protocol() == v1::PROTOCOL_ICMP;
    for (const v1::BackendSpec& backend : spec.backends()) {
      const std::string& text = backend.address();
      if (IsDiscovered(text) || resolved.count(text) > 0) continue;
      const bool bare = icmp && text.find(':') == std::string::npos;
      absl::StatusOr<SocketAddress> address =
          ParseSocketAddress(bare ? absl::StrCat(text, ":1") : text, /*resolve=*/true);
      if (!address.ok()) {
        LOG(WARNING) << "Service " << spec.name() << ": backend " << text
                     << " is left out: " << address.status().message();
        resolved[text] = {};
        continue;
      }
      resolved[text] = {*address};
    }
  }
  MutexLock lock(&mu_);
  std::map<std::string, v1::ServiceSpec>& specs = api ? api_specs_ : config_specs_;
  specs.clear();
  for (v1::ServiceSpec& spec : services) specs[spec.name()] = std::move(spec);
  for (auto& [text, addresses] : resolved) static_[text] = std::move(addresses);
  dirty_ = true;
  wake_.Signal();
}

void ConnectorBackends::ReportAll() {
  MutexLock lock(&mu_);
  report_all_ = true;
  dirty_ = true;
  wake_.Signal();
}

void ConnectorBackends::ApplyTo(v1::RouteSnapshot* snapshot) const {
  MutexLock lock(&mu_);
  for (v1::RouteService& service : *snapshot->mutable_services()) {
    auto it = view_.find(service.name());
    if (it == view_.end()) continue;
    service.clear_backends();
    for (const v1::BackendStatus& status : it->second) {
      if (status.health() != v1::HEALTH_STATE_UNHEALTHY) service.add_backends(status.address());
    }
  }
}

std::map<std::string, std::vector<v1::BackendStatus>> ConnectorBackends::View() const {
  MutexLock lock(&mu_);
  return view_;
}

std::map<std::string, std::vector<v1::BackendStatus>> ConnectorBackends::ComputeLocked(
    const std::map<std::string, v1::HealthState>& health) const {
  std::map<std::string, std::vector<v1::BackendStatus>> view;
  auto add = [&](const v1::ServiceSpec& spec) {
    std::vector<v1::BackendStatus>& list = view[spec.name()];
    list.clear();
    std::set<std::string> seen;
    const bool icmp = spec.protocol() == v1::PROTOCOL_ICMP;
    for (const v1::BackendSpec& backend : spec.backends()) {
      const std::map<std::string, std::vector<SocketAddress>>& from =
          IsDiscovered(backend.address()) ? discovered_ : static_;
      auto addresses = from.find(backend.address());
      if (addresses == from.end()) continue;
      for (const SocketAddress& address : addresses->second) {
        const std::string text = AddressText(address, icmp);
        if (!seen.insert(text).second) continue;
        v1::BackendStatus status;
        status.set_address(text);
        status.set_source(backend.address());
        status.set_health(v1::HEALTH_STATE_UNKNOWN);
        if (spec.has_health_check()) {
          auto h = health.find(TargetKey(spec.name(), text));
          if (h != health.end()) status.set_health(h->second);
        }
        list.push_back(std::move(status));
      }
    }
  };
  for (const auto& [name, spec] : config_specs_) add(spec);
  for (const auto& [name, spec] : api_specs_) add(spec);
  return view;
}

void ConnectorBackends::ExportLocked(
    const std::map<std::string, std::vector<v1::BackendStatus>>& view) {
  if (backends_family_ == nullptr) return;
  std::map<std::string, double> counts;
  for (const auto& [name, list] : view) {
    for (const char* label : {"healthy", "unhealthy", "unknown"}) {
      counts[absl::StrCat(name, "\n", label)] = 0;
    }
    for (const v1::BackendStatus& status : list) {
      counts[absl::StrCat(name, "\n", HealthLabel(status.health()))] += 1;
    }
  }
  for (auto it = gauges_.begin(); it != gauges_.end();) {
    if (counts.count(it->first) == 0) {
      backends_family_->Remove(it->second);
      it = gauges_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [key, count] : counts) {
    prometheus::Gauge*& gauge = gauges_[key];
    if (gauge == nullptr) {
      const size_t split = key.find('\n');
      gauge = &backends_family_->Add(
          {{"service", key.substr(0, split)}, {"health", key.substr(split + 1)}});
    }
    gauge->Set(count);
  }
}

void ConnectorBackends::Run() {
  for (;;) {
    std::vector<std::string> sources;
    std::vector<health::HealthTarget> targets;
    std::vector<v1::HealthReport> changed;
    {
      MutexLock lock(&mu_);
      while (!dirty_ && !stopping_) CondVarWait(&wake_, &mu_);
      if (stopping_) return;
      dirty_ = false;
    }
    // The monitor publishes a state before it reports the transition, so this
    // holds every transition that woke this round.
    const std::map<std::string, v1::HealthState> health = monitor_->States();
    {
      MutexLock lock(&mu_);
      std::set<std::string> wanted_sources;
      for (const auto* specs : {&config_specs_, &api_specs_}) {
        for (const auto& [name, spec] : *specs) {
          for (const v1::BackendSpec& backend : spec.backends()) {
            if (IsDiscovered(backend.address())) wanted_sources.insert(backend.address());
          }
        }
      }
      sources.assign(wanted_sources.begin(), wanted_sources.end());
      for (auto it = discovered_.begin(); it != discovered_.end();) {
        it = wanted_sources.count(it->first) > 0 ? std::next(it) : discovered_.erase(it);
      }

      std::map<std::string, std::vector<v1::BackendStatus>> view = ComputeLocked(health);
      for (const auto* specs : {&config_specs_, &api_specs_}) {
        for (const auto& [name, spec] : *specs) {
          if (!spec.has_health_check()) continue;
          for (const v1::BackendStatus& status : view[name]) {
            health::HealthTarget target;
            target.key = TargetKey(name, status.address());
            const bool bare = status.address().find(':') == std::string::npos;
            absl::StatusOr<SocketAddress> address =
                ParseSocketAddress(bare ? absl::StrCat(status.address(), ":1") : status.address());
            if (!address.ok()) continue;
            target.address = *address;
            target.host = HostOf(status.source());
            target.check = spec.health_check();
            targets.push_back(std::move(target));
          }
        }
      }
      for (const auto& [name, list] : view) {
        auto old = view_.find(name);
        if (!report_all_ && old != view_.end() && SameList(old->second, list)) continue;
        v1::HealthReport report;
        report.set_service(name);
        for (const v1::BackendStatus& status : list) *report.add_backends() = status;
        changed.push_back(std::move(report));
      }
      report_all_ = false;
      view_ = std::move(view);
      ExportLocked(view_);
    }
    if (absl::Status s = discovery_->SetSources(sources); !s.ok()) {
      LOG(WARNING) << "DNS discovery: " << s;
    }
    monitor_->SetTargets(std::move(targets));
    if (!changed.empty()) on_change_(changed);
  }
}

}  // namespace ferry::dataplane
