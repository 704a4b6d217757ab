#include "controlplane/admin_service.h"

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/process.h"
#include "google/protobuf/util/time_util.h"

namespace ferry {
namespace {

grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* context, const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace

absl::StatusOr<std::string> AdminService::ScopeTenant(const Peer& peer,
                                                      const std::string& requested,
                                                      absl::string_view what) const {
  if (requested.empty()) return peer.id.tenant;
  if (absl::Status s = auth_->CheckTenant(peer, requested, what); !s.ok()) return s;
  return requested;
}

grpc::ServerUnaryReactor* AdminService::RegisterService(grpc::CallbackServerContext* context,
                                                        const v1::RegisterServiceRequest* request,
                                                        v1::RegisterServiceResponse* response) {
  absl::StatusOr<Peer> peer = auth_->Authorize(*context, "Admin.RegisterService", {"admin"});
  if (!peer.ok()) return Done(context, peer.status());
  v1::ServiceSpec spec = request->service();
  absl::StatusOr<std::string> tenant =
      ScopeTenant(*peer, spec.tenant(), absl::StrCat("service \"", spec.name(), "\""));
  if (!tenant.ok()) return Done(context, tenant.status());
  spec.set_tenant(*tenant);
  absl::StatusOr<v1::Service> service = registry_->RegisterApiService(spec);
  if (!service.ok()) return Done(context, service.status());
  *response->mutable_service() = *std::move(service);
  return Done(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* AdminService::DeregisterService(
    grpc::CallbackServerContext* context, const v1::DeregisterServiceRequest* request,
    v1::DeregisterServiceResponse* /*response*/) {
  absl::StatusOr<Peer> peer = auth_->Authorize(*context, "Admin.DeregisterService", {"admin"});
  if (!peer.ok()) return Done(context, peer.status());
  absl::StatusOr<std::string> tenant =
      ScopeTenant(*peer, request->tenant(), absl::StrCat("service \"", request->name(), "\""));
  if (!tenant.ok()) return Done(context, tenant.status());
  return Done(context, registry_->DeregisterApiService(*tenant, request->name()));
}

grpc::ServerUnaryReactor* AdminService::ListServices(grpc::CallbackServerContext* context,
                                                     const v1::ListServicesRequest* request,
                                                     v1::ListServicesResponse* response) {
  absl::StatusOr<Peer> peer = auth_->Authorize(*context, "Admin.ListServices", {"admin"});
  if (!peer.ok()) return Done(context, peer.status());
  std::string tenant;
  if (!(request->tenant().empty() && auth_->IsOperator(*peer))) {
    absl::StatusOr<std::string> scoped = ScopeTenant(*peer, request->tenant(), "the services");
    if (!scoped.ok()) return Done(context, scoped.status());
    tenant = *scoped;
  }
  for (v1::Service& service : registry_->ListServices(tenant)) {
    *response->add_services() = std::move(service);
  }
  return Done(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* AdminService::GetStatus(grpc::CallbackServerContext* context,
                                                  const v1::GetStatusRequest* /*request*/,
                                                  v1::GetStatusResponse* response) {
  absl::StatusOr<Peer> peer = auth_->Authorize(*context, "Admin.GetStatus", {"admin"});
  if (!peer.ok()) return Done(context, peer.status());
  const bool all = auth_->IsOperator(*peer);
  response->set_version(std::string(FerryVersion()));
  *response->mutable_uptime() = google::protobuf::util::TimeUtil::NanosecondsToDuration(
      absl::ToInt64Nanoseconds(absl::Now() - started_));
  response->set_route_version(registry_->route_version());
  response->set_trust_domain(trust_domain_);
  for (v1::Peer& connector : registry_->ListConnectors()) {
    if (all || connector.identity().tenant() == peer->id.tenant) {
      *response->add_connectors() = std::move(connector);
    }
  }
  for (v1::Peer& relay : routes_->ListRelays()) *response->add_relays() = std::move(relay);
  for (const v1::Service& service : registry_->ListServices(all ? "" : peer->id.tenant)) {
    switch (service.health()) {
      case v1::HEALTH_STATE_HEALTHY:
        response->set_services_healthy(response->services_healthy() + 1);
        break;
      case v1::HEALTH_STATE_UNHEALTHY:
        response->set_services_unhealthy(response->services_unhealthy() + 1);
        break;
      default:
        response->set_services_unknown(response->services_unknown() + 1);
    }
  }
  return Done(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* AdminService::ListLeases(grpc::CallbackServerContext* context,
                                                   const v1::ListLeasesRequest* request,
                                                   v1::ListLeasesResponse* response) {
  absl::StatusOr<Peer> peer = auth_->Authorize(*context, "Admin.ListLeases", {"admin"});
  if (!peer.ok()) return Done(context, peer.status());
  absl::StatusOr<std::string> tenant = ScopeTenant(*peer, request->tenant(), "the leases");
  if (!tenant.ok()) return Done(context, tenant.status());
  // From the allocator's records, so a lease still held by a service that has not come back
  // since a restart shows too.
  absl::StatusOr<std::vector<v1::Lease>> leases = registry_->ListLeases(*tenant);
  if (!leases.ok()) return Done(context, leases.status());
  for (v1::Lease& lease : *leases) *response->add_leases() = std::move(lease);
  return Done(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* AdminService::ListSessions(grpc::CallbackServerContext* context,
                                                     const v1::ListSessionsRequest* request,
                                                     v1::ListSessionsResponse* response) {
  absl::StatusOr<Peer> peer = auth_->Authorize(*context, "Admin.ListSessions", {"admin"});
  if (!peer.ok()) return Done(context, peer.status());
  absl::StatusOr<std::string> tenant = ScopeTenant(*peer, request->tenant(), "the sessions");
  if (!tenant.ok()) return Done(context, tenant.status());
  // Never keys: SessionInfo has no field for them.
  for (v1::SessionInfo& session : registry_->ListSessions(*tenant)) {
    *response->add_sessions() = std::move(session);
  }
  return Done(context, absl::OkStatus());
}

}  // namespace ferry
