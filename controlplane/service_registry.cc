#include "controlplane/service_registry.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/mutex_lock.h"
#include "common/naming.h"
#include "common/proto_time.h"
#include "common/service_spec_validation.h"
#include "glog/logging.h"
#include "google/protobuf/util/time_util.h"

namespace ferry {
namespace {

constexpr char kApiServicesPrefix[] = "/api_services/";
constexpr char kServiceIdsPrefix[] = "/service_ids/";
constexpr char kNextServiceIdKey[] = "/meta/next_service_id";
constexpr char kRouteVersionKey[] = "/meta/route_version";
constexpr size_t kRememberedVersions = 4096;
constexpr int kMissedKeepalives = 3;

std::string KeySuffix(const std::string& tenant, const std::string& name) {
  return absl::StrCat(tenant, "/", name);
}

absl::StatusOr<uint64_t> ReadCounter(controlplane::StateStore* store, absl::string_view key) {
  absl::StatusOr<std::optional<std::string>> value = store->Get(key);
  if (!value.ok()) return value.status();
  uint64_t n = 0;
  if (value->has_value() && !absl::SimpleAtoi(**value, &n)) {
    return absl::DataLossError(
        absl::StrCat("state key ", key, " holds \"", **value, "\", not a number"));
  }
  return n;
}

// A zone is one or more DNS labels separated by dots ("ferry.internal").
absl::Status ValidateZone(const std::string& zone) {
  if (zone.empty()) return absl::InvalidArgumentError("dns_zone is empty; e.g. ferry.internal");
  for (absl::string_view label : absl::StrSplit(zone, '.')) {
    if (!IsValidName(label)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "dns_zone \"", zone, "\": \"", label,
          "\" is not a DNS label (lower-case letters, digits and inner hyphens, 1-63 characters)"));
    }
  }
  return absl::OkStatus();
}

// The watcher role of a relay or connector identity; nullopt for other roles.
std::optional<controlplane::WatcherRole> WatcherRoleOf(const SpiffeId& id) {
  if (id.role == "relay") return controlplane::WatcherRole::kRelay;
  if (id.role == "connector") return controlplane::WatcherRole::kConnector;
  return std::nullopt;
}

// `status` with its message prefixed by `path`, same code.
absl::Status WithPath(const absl::Status& status, absl::string_view path) {
  return absl::Status(status.code(), absl::StrCat(path, ": ", status.message()));
}

}  // namespace

ServiceRegistry::ServiceRegistry(controlplane::StateStore* store, IntermediateMetrics* metrics,
                                 Options options, std::unique_ptr<controlplane::VipAllocator> vips,
                                 std::unique_ptr<controlplane::SessionTable> sessions)
    : store_(store),
      metrics_(metrics),
      options_(std::move(options)),
      vips_(std::move(vips)),
      sessions_(std::move(sessions)) {}

absl::StatusOr<std::unique_ptr<ServiceRegistry>> ServiceRegistry::Create(
    controlplane::StateStore* store, IntermediateMetrics* metrics, Options options) {
  if (absl::Status s = ValidateZone(options.dns_zone); !s.ok()) return s;
  controlplane::VipAllocator::Options vip_options;
  vip_options.pools = options.vip_pools;
  vip_options.cooldown = options.vip_cooldown;
  vip_options.now = options.now;
  absl::StatusOr<std::unique_ptr<controlplane::VipAllocator>> vips =
      controlplane::VipAllocator::Create(store, std::move(vip_options));
  if (!vips.ok()) return vips.status();
  controlplane::SessionTable::Options session_options;
  session_options.ttl = options.session_ttl;
  session_options.max_sessions_per_agent = options.max_sessions_per_agent;
  absl::StatusOr<std::unique_ptr<controlplane::SessionTable>> sessions =
      controlplane::SessionTable::Create(std::move(session_options));
  if (!sessions.ok()) return sessions.status();
  std::unique_ptr<ServiceRegistry> registry(new ServiceRegistry(
      store, metrics, std::move(options), *std::move(vips), *std::move(sessions)));
  if (absl::Status s = registry->Load(); !s.ok()) return s;
  return registry;
}

absl::StatusOr<std::string> ServiceRegistry::LeaseVipLocked(const v1::ServiceSpec& spec,
                                                            absl::string_view path, bool* fresh) {
  absl::StatusOr<std::optional<controlplane::VipAllocator::Lease>> before =
      vips_->Lookup(spec.tenant(), spec.name());
  if (!before.ok()) return WithPath(before.status(), path);
  absl::StatusOr<controlplane::VipAllocator::Lease> lease =
      vips_->Allocate(spec.tenant(), spec.name(), spec.pinned_vip());
  if (!lease.ok()) return WithPath(lease.status(), path);
  *fresh = !before->has_value();
  return lease->vip;
}

void ServiceRegistry::ReleaseVipLocked(const Key& key, bool discard) {
  const absl::Status s =
      discard ? vips_->Discard(key.first, key.second) : vips_->Release(key.first, key.second);
  if (!s.ok() && !absl::IsNotFound(s)) {
    LOG(ERROR) << "Cannot release the VIP of " << key.first << "/" << key.second << ": " << s;
  }
}

void ServiceRegistry::ExportVipUsageLocked() {
  if (absl::Status s = vips_->ExportUsage(*metrics_); !s.ok()) {
    LOG(WARNING) << "Cannot update the VIP pool gauges: " << s;
  }
}

absl::Status ServiceRegistry::Load() {
  MutexLock lock(&mu_);
  absl::StatusOr<uint64_t> version = ReadCounter(store_, kRouteVersionKey);
  if (!version.ok()) return version.status();
  version_ = *version;
  absl::StatusOr<std::vector<controlplane::KeyValue>> api = store_->List(kApiServicesPrefix);
  if (!api.ok()) return api.status();
  for (const controlplane::KeyValue& kv : *api) {
    ServiceEntry entry;
    if (!entry.spec.ParseFromString(kv.value)) {
      return absl::DataLossError(absl::StrCat("state key ", kv.key, " is not a ServiceSpec"));
    }
    const Key key{entry.spec.tenant(), entry.spec.name()};
    absl::StatusOr<uint32_t> id = ServiceIdLocked(key);
    if (!id.ok()) return id.status();
    entry.id = *id;
    entry.origin = "api";
    entry.connector = entry.spec.connector();
    bool fresh = false;
    absl::StatusOr<std::string> vip = LeaseVipLocked(entry.spec, kv.key, &fresh);
    if (vip.ok()) {
      entry.vip = *std::move(vip);
    } else {
      // The pools changed under a persisted registration (a pin now outside them, or no room).
      // Keep the registration; it stays without a VIP until re-registered.
      LOG(ERROR) << "API service " << key.first << "/" << key.second
                 << " gets no VIP: " << vip.status();
    }
    services_[key] = std::move(entry);
  }
  // Leases of services not loaded here (config services, whose connectors say Hello again after
  // a restart) wait one grace period for their service, like a detached connector's routes.
  absl::StatusOr<std::vector<controlplane::VipAllocator::Lease>> leases = vips_->ListLeases("");
  if (!leases.ok()) return leases.status();
  const absl::Time deadline = options_.now() + options_.connector_grace;
  for (const controlplane::VipAllocator::Lease& lease : *leases) {
    const Key key{lease.tenant, lease.service};
    if (services_.count(key) == 0) unclaimed_leases_[key] = deadline;
  }
  ExportVipUsageLocked();
  LOG(INFO) << "Registry loaded " << services_.size() << " API services and "
            << unclaimed_leases_.size() << " other VIP leases at route version " << version_;
  // A restart is a change: watchers must see a version above any they had.
  BumpVersionLocked();
  return absl::OkStatus();
}

absl::StatusOr<uint32_t> ServiceRegistry::ServiceIdLocked(const Key& key) {
  const std::string id_key = absl::StrCat(kServiceIdsPrefix, KeySuffix(key.first, key.second));
  absl::StatusOr<uint64_t> existing = ReadCounter(store_, id_key);
  if (!existing.ok()) return existing.status();
  if (*existing != 0) return static_cast<uint32_t>(*existing);
  absl::StatusOr<uint64_t> next = ReadCounter(store_, kNextServiceIdKey);
  if (!next.ok()) return next.status();
  const uint64_t id = std::max<uint64_t>(*next, 1);
  if (id > UINT32_MAX) return absl::ResourceExhaustedError("service ids are exhausted");
  absl::Status s =
      store_->Apply({controlplane::Mutation::Put(id_key, absl::StrCat(id)),
                     controlplane::Mutation::Put(kNextServiceIdKey, absl::StrCat(id + 1))});
  if (!s.ok()) return s;
  return static_cast<uint32_t>(id);
}

bool ServiceRegistry::RoutedLocked(const ServiceEntry& entry) const {
  auto it = connectors_.find(Key{entry.spec.tenant(), entry.connector});
  return it != connectors_.end();  // Attached, or detached within its grace.
}

v1::Service ServiceRegistry::ToServiceLocked(const ServiceEntry& entry) const {
  v1::Service service;
  *service.mutable_spec() = entry.spec;
  service.set_id(entry.id);
  service.set_origin(entry.origin);
  if (!entry.vip.empty()) {
    service.set_vip(entry.vip);
    service.set_dns_name(
        absl::StrCat(entry.spec.name(), ".", entry.spec.tenant(), ".", options_.dns_zone));
  }
  const bool routed = RoutedLocked(entry);
  if (routed) service.set_connector(entry.connector);
  if (entry.reported.has_value()) {
    for (const v1::BackendStatus& status : *entry.reported) *service.add_backends() = status;
  } else {
    for (const v1::BackendSpec& backend : entry.spec.backends()) {
      v1::BackendStatus* status = service.add_backends();
      status->set_address(backend.address());
      status->set_source(backend.address());
      status->set_health(v1::HEALTH_STATE_UNKNOWN);
    }
  }
  int healthy = 0;
  int unhealthy = 0;
  for (const v1::BackendStatus& status : service.backends()) {
    if (status.health() == v1::HEALTH_STATE_HEALTHY) ++healthy;
    if (status.health() == v1::HEALTH_STATE_UNHEALTHY) ++unhealthy;
  }
  if (!routed) {
    service.set_health(v1::HEALTH_STATE_UNHEALTHY);
  } else if (healthy > 0) {
    service.set_health(v1::HEALTH_STATE_HEALTHY);
  } else if (unhealthy == service.backends_size()) {
    // Every backend failed its checks, or discovery found none.
    service.set_health(v1::HEALTH_STATE_UNHEALTHY);
  } else {
    service.set_health(v1::HEALTH_STATE_UNKNOWN);
  }
  return service;
}

void ServiceRegistry::DropUnroutedSessionsLocked() {
  const int dropped = sessions_->RetainIf([this](const controlplane::Session& session) {
    mu_.AssertHeld();
    auto it = services_.find(Key{session.tenant, session.service});
    return it != services_.end() && it->second.id == session.service_id &&
           it->second.connector == session.connector && RoutedLocked(it->second);
  });
  if (dropped > 0) {
    LOG(INFO) << "Dropped " << dropped << " sessions whose service left the routes";
  }
}

void ServiceRegistry::BumpVersionLocked() {
  DropUnroutedSessionsLocked();
  metrics_->sessions_open().Set(static_cast<double>(sessions_->size()));
  ++version_;
  absl::Status s = store_->Put(kRouteVersionKey, absl::StrCat(version_));
  if (!s.ok()) LOG(ERROR) << "Cannot persist route version " << version_ << ": " << s;
  version_times_.emplace_back(version_, options_.now());
  if (version_times_.size() > kRememberedVersions) version_times_.pop_front();
  metrics_->route_version().Set(static_cast<double>(version_));
  UpdateGaugesLocked();
}

void ServiceRegistry::UpdateGaugesLocked() {
  int healthy = 0;
  int unhealthy = 0;
  int unknown = 0;
  for (const auto& [key, entry] : services_) {
    switch (ToServiceLocked(entry).health()) {
      case v1::HEALTH_STATE_HEALTHY:
        ++healthy;
        break;
      case v1::HEALTH_STATE_UNHEALTHY:
        ++unhealthy;
        break;
      default:
        ++unknown;
    }
  }
  metrics_->Services("healthy").Set(healthy);
  metrics_->Services("unhealthy").Set(unhealthy);
  metrics_->Services("unknown").Set(unknown);
  int connected = 0;
  for (const auto& [key, c] : connectors_) connected += c.link != nullptr;
  metrics_->ConnectedPeers("connector").Set(connected);
}

void ServiceRegistry::Notify() {
  MutexLock lock(&subscribers_mu_);
  for (auto& [id, callback] : subscribers_) callback();
}

absl::Status ServiceRegistry::ApplyHelloLocked(const SpiffeId& id, const v1::Hello& hello) {
  // Validate everything first: a bad Hello changes nothing.
  std::map<std::string, v1::ServiceSpec> wanted;
  std::map<std::string, std::string> paths;  // name -> "hello.services[i]"
  for (int i = 0; i < hello.services_size(); ++i) {
    v1::ServiceSpec spec = hello.services(i);
    const std::string path = absl::StrCat("hello.services[", i, "]");
    if (spec.tenant().empty()) spec.set_tenant(id.tenant);
    if (spec.tenant() != id.tenant) {
      return absl::PermissionDeniedError(absl::StrCat(path, ".tenant: \"", spec.tenant(),
                                                      "\" is not the connector's tenant \"",
                                                      id.tenant, "\""));
    }
    if (absl::Status s = ValidateServiceSpec(spec, path); !s.ok()) return s;
    spec.set_connector(id.name);
    if (!wanted.emplace(spec.name(), spec).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ".name: \"", spec.name(), "\" appears twice"));
    }
    paths[spec.name()] = path;
    auto it = services_.find(Key{id.tenant, spec.name()});
    if (it != services_.end() &&
        (it->second.origin != "config" || it->second.connector != id.name)) {
      return absl::AlreadyExistsError(absl::StrCat(
          path, ".name: tenant \"", id.tenant, "\" already has a service \"", spec.name(), "\" (",
          it->second.origin, ", served by connector \"", it->second.connector, "\")"));
    }
  }
  // Lease every service's VIP (a service that has one gets it back). One refusal refuses the
  // Hello, and addresses first leased for it are given back at once: nobody saw them.
  std::map<std::string, std::string> vips;
  std::vector<Key> fresh_leases;
  for (const auto& [name, spec] : wanted) {
    bool fresh = false;
    absl::StatusOr<std::string> vip = LeaseVipLocked(spec, paths[name], &fresh);
    if (!vip.ok()) {
      for (const Key& key : fresh_leases) ReleaseVipLocked(key, /*discard=*/true);
      // Registered services whose pin moved their lease keep the move; publish it.
      bool moved = false;
      for (const auto& [leased, address] : vips) {
        auto it = services_.find(Key{id.tenant, leased});
        if (it != services_.end() && it->second.vip != address) {
          it->second.vip = address;
          moved = true;
        }
      }
      ExportVipUsageLocked();
      if (moved) BumpVersionLocked();
      return vip.status();
    }
    if (fresh) fresh_leases.push_back(Key{id.tenant, name});
    vips[name] = *std::move(vip);
  }
  // Remove this connector's config services that are gone; add or update the rest.
  for (auto it = services_.begin(); it != services_.end();) {
    const ServiceEntry& entry = it->second;
    if (entry.origin == "config" && entry.connector == id.name &&
        entry.spec.tenant() == id.tenant && wanted.count(entry.spec.name()) == 0) {
      ReleaseVipLocked(it->first);
      it = services_.erase(it);
    } else {
      ++it;
    }
  }
  ExportVipUsageLocked();
  for (auto& [name, spec] : wanted) {
    const Key key{id.tenant, name};
    ServiceEntry& entry = services_[key];
    entry.vip = vips[name];
    if (entry.id == 0) {
      absl::StatusOr<uint32_t> service_id = ServiceIdLocked(key);
      if (!service_id.ok()) return service_id.status();
      entry.id = *service_id;
    }
    if (entry.spec.SerializeAsString() != spec.SerializeAsString()) entry.reported.reset();
    entry.spec = spec;
    entry.origin = "config";
    entry.connector = id.name;
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> ServiceRegistry::AttachConnector(const SpiffeId& id,
                                                          const std::string& address,
                                                          const v1::Hello& hello,
                                                          std::shared_ptr<ConnectorLink> link) {
  std::shared_ptr<ConnectorLink> replaced;
  uint64_t serial = 0;
  absl::Status refused;
  bool changed = true;
  {
    MutexLock lock(&mu_);
    const uint64_t version = version_;
    refused = ApplyHelloLocked(id, hello);
    if (!refused.ok()) {
      changed = version_ != version;  // A refused Hello may still have moved a re-pinned VIP.
    } else {
      ConnectorEntry& entry = connectors_[Key{id.tenant, id.name}];
      replaced = std::move(entry.link);
      entry.id = id;
      entry.address = address;
      entry.version = hello.version();
      entry.connected_at = options_.now();
      entry.last_seen = entry.connected_at;
      entry.serial = serial = next_serial_++;
      entry.link = std::move(link);
      entry.grace_deadline = absl::InfiniteFuture();
      BumpVersionLocked();
      LOG(INFO) << "Connector " << id.ToUri() << " attached from " << address << " with "
                << hello.services_size() << " services (session " << serial << ")";
    }
  }
  if (replaced) {
    replaced->Close(absl::AbortedError("replaced by a newer session of the same connector"));
  }
  if (changed) Notify();
  if (!refused.ok()) return refused;
  return serial;
}

absl::Status ServiceRegistry::UpdateConnector(const SpiffeId& id, uint64_t serial,
                                              const v1::Hello& hello) {
  absl::Status refused;
  bool changed = true;
  {
    MutexLock lock(&mu_);
    auto it = connectors_.find(Key{id.tenant, id.name});
    if (it == connectors_.end() || it->second.serial != serial) {
      return absl::FailedPreconditionError("this connector session was replaced");
    }
    const uint64_t version = version_;
    refused = ApplyHelloLocked(id, hello);
    if (!refused.ok()) {
      changed = version_ != version;  // A refused Hello may still have moved a re-pinned VIP.
    } else {
      it->second.last_seen = options_.now();
      BumpVersionLocked();
    }
  }
  if (changed) Notify();
  return refused;
}

v1::Welcome ServiceRegistry::WelcomeFor(const SpiffeId& id) {
  MutexLock lock(&mu_);
  v1::Welcome welcome;
  const int64_t nanos = absl::ToInt64Nanoseconds(options_.keepalive_interval);
  *welcome.mutable_keepalive_interval() =
      google::protobuf::util::TimeUtil::NanosecondsToDuration(nanos);
  for (const auto& [key, entry] : services_) {
    if (key.first == id.tenant && entry.connector == id.name) {
      *welcome.add_services() = ToServiceLocked(entry);
    }
  }
  return welcome;
}

void ServiceRegistry::Keepalive(const SpiffeId& id, uint64_t serial) {
  MutexLock lock(&mu_);
  auto it = connectors_.find(Key{id.tenant, id.name});
  if (it != connectors_.end() && it->second.serial == serial) it->second.last_seen = options_.now();
}

absl::Status ServiceRegistry::ReportHealth(const SpiffeId& id, uint64_t serial,
                                           const v1::HealthReport& report) {
  {
    MutexLock lock(&mu_);
    auto conn = connectors_.find(Key{id.tenant, id.name});
    if (conn == connectors_.end() || conn->second.serial != serial) {
      return absl::FailedPreconditionError("this connector session was replaced");
    }
    conn->second.last_seen = options_.now();
    auto it = services_.find(Key{id.tenant, report.service()});
    if (it == services_.end() || it->second.connector != id.name) {
      return absl::NotFoundError(absl::StrCat("health report for service \"", report.service(),
                                              "\", which this connector does not serve"));
    }
    std::vector<v1::BackendStatus> backends;
    for (int i = 0; i < report.backends_size(); ++i) {
      v1::BackendStatus status = report.backends(i);
      if (status.address().empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("health.backends[", i, "].address: empty; give the resolved ip:port"));
      }
      if (status.source().empty()) status.set_source(status.address());
      const auto& specs = it->second.spec.backends();
      if (std::none_of(specs.begin(), specs.end(),
                       [&](const v1::BackendSpec& b) { return b.address() == status.source(); })) {
        return absl::InvalidArgumentError(absl::StrCat(
            "health.backends[", i, "].source: \"", status.source(), "\" is not a backend of ",
            id.tenant, "/", report.service(), "; report the spec's address it was resolved from"));
      }
      backends.push_back(std::move(status));
    }
    const auto same = [](const std::vector<v1::BackendStatus>& a,
                         const std::vector<v1::BackendStatus>& b) {
      return a.size() == b.size() &&
             std::equal(a.begin(), a.end(), b.begin(), [](const auto& x, const auto& y) {
               return x.SerializeAsString() == y.SerializeAsString();
             });
    };
    const bool changed = !it->second.reported.has_value() || !same(*it->second.reported, backends);
    it->second.reported = std::move(backends);
    if (!changed) return absl::OkStatus();
    LOG(INFO) << "Health of " << id.tenant << "/" << report.service() << " changed";
    BumpVersionLocked();
  }
  Notify();
  return absl::OkStatus();
}

void ServiceRegistry::SetConfigStatus(const SpiffeId& id, uint64_t serial,
                                      const v1::ConfigStatus& status) {
  MutexLock lock(&mu_);
  auto it = connectors_.find(Key{id.tenant, id.name});
  if (it == connectors_.end() || it->second.serial != serial) return;
  it->second.config_status = status;
  if (!status.error().empty()) {
    LOG(WARNING) << "Connector " << id.ToUri() << " refused a config reload of " << status.path()
                 << ": " << status.error();
  }
}

void ServiceRegistry::DetachConnector(const SpiffeId& id, uint64_t serial) {
  MutexLock lock(&mu_);
  auto it = connectors_.find(Key{id.tenant, id.name});
  if (it == connectors_.end() || it->second.serial != serial) return;
  it->second.link.reset();
  it->second.grace_deadline = options_.now() + options_.connector_grace;
  LOG(INFO) << "Connector " << id.ToUri() << " detached; its services stay routed for "
            << options_.connector_grace;
  UpdateGaugesLocked();
}

void ServiceRegistry::Tick() {
  std::vector<std::shared_ptr<ConnectorLink>> to_close;
  bool changed = false;
  {
    MutexLock lock(&mu_);
    const absl::Time now = options_.now();
    for (auto it = connectors_.begin(); it != connectors_.end();) {
      ConnectorEntry& c = it->second;
      if (c.link != nullptr &&
          now - c.last_seen > kMissedKeepalives * options_.keepalive_interval) {
        LOG(WARNING) << "Connector " << c.id.ToUri() << " missed " << kMissedKeepalives
                     << " keepalives; ending its stream";
        to_close.push_back(c.link);
        c.link.reset();
        c.grace_deadline = now + options_.connector_grace;
      }
      if (c.link == nullptr && now >= c.grace_deadline) {
        LOG(INFO) << "Connector " << c.id.ToUri() << " grace period over; withdrawing its routes";
        const Key key = it->first;
        for (auto s = services_.begin(); s != services_.end();) {
          const bool mine = s->first.first == key.first && s->second.connector == key.second;
          if (mine && s->second.origin == "config") {
            ReleaseVipLocked(s->first);
            s = services_.erase(s);
          } else {
            if (mine) s->second.reported.reset();
            ++s;
          }
        }
        it = connectors_.erase(it);
        changed = true;
      } else {
        ++it;
      }
    }
    // Leases found at start-up whose service did not come back within the grace period.
    bool released = false;
    for (auto it = unclaimed_leases_.begin(); it != unclaimed_leases_.end();) {
      if (now < it->second) {
        ++it;
        continue;
      }
      if (services_.count(it->first) == 0) {
        LOG(INFO) << "No service " << it->first.first << "/" << it->first.second
                  << " registered since the restart; releasing its VIP";
        ReleaseVipLocked(it->first);
        released = true;
      }
      it = unclaimed_leases_.erase(it);
    }
    if (changed || released) ExportVipUsageLocked();
    if (const int expired = sessions_->Expire(now); expired > 0) {
      LOG(INFO) << expired << " sessions expired";
      changed = true;
    }
    if (changed) BumpVersionLocked();
  }
  for (auto& link : to_close) {
    link->Close(absl::UnavailableError("missed keepalives"));
  }
  if (changed) Notify();
}

v1::ApiServices ServiceRegistry::ApiServicesForLocked(const Key& connector) const {
  v1::ApiServices api;
  for (const auto& [key, entry] : services_) {
    if (entry.origin == "api" && key.first == connector.first &&
        entry.connector == connector.second) {
      *api.add_services() = entry.spec;
    }
  }
  return api;
}

absl::StatusOr<v1::Service> ServiceRegistry::RegisterApiService(const v1::ServiceSpec& spec) {
  if (absl::Status s = ValidateServiceSpec(spec, "service"); !s.ok()) return s;
  if (spec.tenant().empty() || spec.connector().empty()) {
    return absl::InvalidArgumentError(
        "service.connector: name the connector (of the service's tenant) that is to serve it");
  }
  v1::Service result;
  std::shared_ptr<ConnectorLink> link;
  v1::ConnectorCommand command;
  {
    MutexLock lock(&mu_);
    const Key key{spec.tenant(), spec.name()};
    auto existing = services_.find(key);
    if (existing != services_.end()) {
      return absl::AlreadyExistsError(absl::StrCat(
          "tenant \"", spec.tenant(), "\" already has a service \"", spec.name(), "\" (",
          existing->second.origin, ", served by connector \"", existing->second.connector,
          "\"); deregister it first or pick another name"));
    }
    absl::StatusOr<uint32_t> id = ServiceIdLocked(key);
    if (!id.ok()) return id.status();
    bool fresh = false;
    absl::StatusOr<std::string> vip = LeaseVipLocked(spec, "service", &fresh);
    if (!vip.ok()) return vip.status();
    if (absl::Status s =
            store_->Put(absl::StrCat(kApiServicesPrefix, KeySuffix(spec.tenant(), spec.name())),
                        spec.SerializeAsString());
        !s.ok()) {
      if (fresh) ReleaseVipLocked(key, /*discard=*/true);
      return s;
    }
    ExportVipUsageLocked();
    ServiceEntry& entry = services_[key];
    entry.vip = *std::move(vip);
    entry.spec = spec;
    entry.id = *id;
    entry.origin = "api";
    entry.connector = spec.connector();
    result = ToServiceLocked(entry);
    auto conn = connectors_.find(Key{spec.tenant(), spec.connector()});
    if (conn != connectors_.end() && conn->second.link != nullptr) {
      link = conn->second.link;
      *command.mutable_api_services() = ApiServicesForLocked(conn->first);
    }
    BumpVersionLocked();
    LOG(INFO) << "Registered API service " << spec.tenant() << "/" << spec.name() << " (id " << *id
              << ") for connector " << spec.connector();
  }
  if (link) link->Send(std::move(command));
  Notify();
  return result;
}

absl::Status ServiceRegistry::DeregisterApiService(const std::string& tenant,
                                                   const std::string& name) {
  std::shared_ptr<ConnectorLink> link;
  v1::ConnectorCommand command;
  {
    MutexLock lock(&mu_);
    auto it = services_.find(Key{tenant, name});
    if (it == services_.end()) {
      return absl::NotFoundError(
          absl::StrCat("tenant \"", tenant, "\" has no service \"", name, "\""));
    }
    if (it->second.origin != "api") {
      return absl::FailedPreconditionError(
          absl::StrCat("service \"", name, "\" comes from connector \"", it->second.connector,
                       "\"'s config file; remove it there"));
    }
    if (absl::Status s = store_->Delete(absl::StrCat(kApiServicesPrefix, KeySuffix(tenant, name)));
        !s.ok()) {
      return s;
    }
    const Key connector{tenant, it->second.connector};
    ReleaseVipLocked(it->first);
    ExportVipUsageLocked();
    services_.erase(it);
    auto conn = connectors_.find(connector);
    if (conn != connectors_.end() && conn->second.link != nullptr) {
      link = conn->second.link;
      *command.mutable_api_services() = ApiServicesForLocked(connector);
    }
    BumpVersionLocked();
    LOG(INFO) << "Deregistered API service " << tenant << "/" << name;
  }
  if (link) link->Send(std::move(command));
  Notify();
  return absl::OkStatus();
}

std::vector<v1::Service> ServiceRegistry::ListServices(const std::string& tenant) {
  MutexLock lock(&mu_);
  std::vector<v1::Service> out;
  for (const auto& [key, entry] : services_) {
    if (tenant.empty() || key.first == tenant) out.push_back(ToServiceLocked(entry));
  }
  return out;
}

std::vector<v1::Peer> ServiceRegistry::ListConnectors() {
  MutexLock lock(&mu_);
  std::vector<v1::Peer> out;
  for (const auto& [key, c] : connectors_) {
    if (c.link == nullptr) continue;
    v1::Peer peer;
    *peer.mutable_identity() = c.id.ToProto();
    peer.set_address(c.address);
    *peer.mutable_connected_at() = ToTimestampProto(c.connected_at);
    peer.set_version(c.version);
    peer.set_acked_route_version(c.acked_route_version);
    if (!c.config_status.error().empty()) {
      peer.set_config_error(c.config_status.error());
      *peer.mutable_config_error_at() = c.config_status.at();
    }
    out.push_back(std::move(peer));
  }
  return out;
}

absl::StatusOr<std::vector<v1::Lease>> ServiceRegistry::ListLeases(const std::string& tenant) {
  absl::StatusOr<std::vector<controlplane::VipAllocator::Lease>> leases = vips_->ListLeases(tenant);
  if (!leases.ok()) return leases.status();
  std::vector<v1::Lease> out;
  out.reserve(leases->size());
  for (const controlplane::VipAllocator::Lease& lease : *leases) out.push_back(lease.ToProto());
  return out;
}

std::optional<std::string> ServiceRegistry::ResolveVip(const std::string& tenant,
                                                       const std::string& name) {
  MutexLock lock(&mu_);
  auto it = services_.find(Key{tenant, name});
  if (it == services_.end() || it->second.vip.empty()) return std::nullopt;
  return it->second.vip;
}

uint64_t ServiceRegistry::route_version() {
  MutexLock lock(&mu_);
  return version_;
}

v1::RouteSnapshot ServiceRegistry::BuildSnapshot(const SpiffeId& id) {
  MutexLock lock(&mu_);
  v1::RouteSnapshot snapshot;
  snapshot.set_version(version_);
  for (const auto& [key, entry] : services_) {
    if (!RoutedLocked(entry)) continue;
    if (id.role == "connector" && (key.first != id.tenant || entry.connector != id.name)) continue;
    const v1::Service service = ToServiceLocked(entry);
    v1::RouteService* route = snapshot.add_services();
    route->set_service_id(entry.id);
    route->set_name(entry.spec.name());
    route->set_tenant(entry.spec.tenant());
    route->set_protocol(entry.spec.protocol());
    route->set_vip(service.vip());
    route->set_port(entry.spec.port());
    route->set_connector(entry.connector);
    for (const v1::BackendStatus& backend : service.backends()) {
      // A dns:// or srv:// spec the connector has not resolved yet is no
      // address a data plane can send to.
      if (backend.health() == v1::HEALTH_STATE_UNHEALTHY ||
          absl::StrContains(backend.address(), "://")) {
        continue;
      }
      route->add_backends(backend.address());
    }
  }
  if (std::optional<controlplane::WatcherRole> role = WatcherRoleOf(id)) {
    sessions_->AppendRouteSessions(*role, controlplane::PartyKey{id.tenant, id.name}, &snapshot);
  }
  return snapshot;
}

uint64_t ServiceRegistry::Subscribe(std::function<void()> callback) {
  MutexLock lock(&subscribers_mu_);
  const uint64_t id = next_subscription_++;
  subscribers_.emplace(id, std::move(callback));
  return id;
}

void ServiceRegistry::Unsubscribe(uint64_t subscription) {
  MutexLock lock(&subscribers_mu_);
  subscribers_.erase(subscription);
}

std::optional<absl::Time> ServiceRegistry::VersionTime(uint64_t version) {
  MutexLock lock(&mu_);
  for (auto it = version_times_.rbegin(); it != version_times_.rend(); ++it) {
    if (it->first == version) return it->second;
    if (it->first < version) break;
  }
  return std::nullopt;
}

void ServiceRegistry::RecordAck(const SpiffeId& id, uint64_t version) {
  MutexLock lock(&mu_);
  auto it = connectors_.find(Key{id.tenant, id.name});
  if (id.role == "connector" && it != connectors_.end()) it->second.acked_route_version = version;
}

absl::Status ServiceRegistry::SetWatcherAddresses(const SpiffeId& id, uint64_t stream,
                                                  const std::string& udp_address,
                                                  const std::string& stream_address) {
  const std::optional<controlplane::WatcherRole> role = WatcherRoleOf(id);
  if (!role.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "only relays and connectors announce data-plane addresses, not role ", id.role));
  }
  {
    MutexLock lock(&mu_);
    absl::StatusOr<bool> changed =
        sessions_->SetWatcherAddresses(*role, controlplane::PartyKey{id.tenant, id.name}, stream,
                                       controlplane::DataAddresses{udp_address, stream_address});
    if (!changed.ok()) return changed.status();
    LOG(INFO) << "Watcher " << id.ToUri() << " announced data-plane addresses udp \"" << udp_address
              << "\", stream \"" << stream_address << "\"";
    if (!*changed) return absl::OkStatus();
    BumpVersionLocked();
  }
  Notify();
  return absl::OkStatus();
}

void ServiceRegistry::ClearWatcherAddresses(const SpiffeId& id, uint64_t stream) {
  const std::optional<controlplane::WatcherRole> role = WatcherRoleOf(id);
  if (!role.has_value()) return;
  {
    MutexLock lock(&mu_);
    if (!sessions_->ClearWatcherAddresses(*role, controlplane::PartyKey{id.tenant, id.name},
                                          stream)) {
      return;
    }
    BumpVersionLocked();
  }
  Notify();
}

absl::StatusOr<v1::OpenSessionResponse> ServiceRegistry::OpenSession(const SpiffeId& agent,
                                                                     const std::string& service) {
  v1::OpenSessionResponse response;
  {
    MutexLock lock(&mu_);
    auto it = services_.find(Key{agent.tenant, service});
    if (it == services_.end()) {
      return absl::NotFoundError(
          absl::StrCat("tenant \"", agent.tenant, "\" has no service \"", service, "\""));
    }
    const ServiceEntry& entry = it->second;
    if (!RoutedLocked(entry)) {
      return absl::NotFoundError(absl::StrCat("service \"", service, "\" of tenant \"",
                                              agent.tenant, "\" is not routed: its connector \"",
                                              entry.connector, "\" is not connected"));
    }
    controlplane::SessionTable::OpenRequest request;
    request.agent = controlplane::PartyKey{agent.tenant, agent.name};
    request.service = service;
    request.service_id = entry.id;
    request.protocol = entry.spec.protocol();
    request.connector = entry.connector;
    absl::StatusOr<controlplane::SessionTable::Opened> opened =
        sessions_->Open(request, options_.now());
    if (!opened.ok()) return opened.status();
    const controlplane::Session& session = opened->session;
    *response.mutable_agent_hop() = session.agent_hop;
    response.set_relay_address(opened->relay.udp_address);
    response.set_relay_stream_address(opened->relay.stream_address);
    response.set_service_id(entry.id);
    response.set_vip(entry.vip);
    response.set_protocol(entry.spec.protocol());
    response.set_port(entry.spec.port());
    *response.mutable_ttl() = google::protobuf::util::TimeUtil::NanosecondsToDuration(
        absl::ToInt64Nanoseconds(options_.session_ttl));
    LOG(INFO) << "Session " << absl::StrFormat("%016x", session.agent_hop.session_id())
              << " opened: agent " << agent.ToUri() << " to service " << service << " (id "
              << entry.id << ") of connector " << entry.connector << " via relay "
              << session.relay.tenant << "/" << session.relay.name << ", expires "
              << absl::FormatTime(session.expires_at);
    BumpVersionLocked();
  }
  Notify();
  return response;
}

std::vector<v1::SessionInfo> ServiceRegistry::ListSessions(const std::string& tenant) {
  MutexLock lock(&mu_);
  return sessions_->List(tenant);
}

std::optional<controlplane::SessionParties> ServiceRegistry::FindSessionParties(
    uint64_t session_id, std::shared_ptr<ConnectorLink>* connector_link) {
  MutexLock lock(&mu_);
  connector_link->reset();
  std::optional<controlplane::SessionParties> parties = sessions_->FindParties(session_id);
  if (!parties.has_value() || parties->ended) return parties;
  auto it = connectors_.find(Key{parties->tenant, parties->connector});
  if (it != connectors_.end()) *connector_link = it->second.link;
  return parties;
}

}  // namespace ferry
